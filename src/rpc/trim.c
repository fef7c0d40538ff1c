#include "trim.h"

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/* How often to look, and how many free bytes malloc must hold before a trim
 * is worth its cost: malloc_trim walks every arena under its lock, so it is
 * not done while nothing changed. */
#define TRIM_INTERVAL_S 2
#define TRIM_MIN_FREE ((size_t)8 * 1024 * 1024)

/* glibc gives the top of each heap back by itself, but not free pages in
 * the middle of a heap or in the arenas of gRPC's threads: after 150 MB of
 * CONTINUATION frames exhookd held 2.6 GB until it exited, 15 MB with a
 * trim. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stop;
} trim = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *trim_main(void *arg)
{
    (void)arg;
    size_t free_after_last = 0;
    pthread_mutex_lock(&trim.lock);
    while (!trim.stop) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_sec += TRIM_INTERVAL_S;
        pthread_cond_timedwait(&trim.wake, &trim.lock, &at);
        if (trim.stop)
            break;
        pthread_mutex_unlock(&trim.lock);
        size_t held = mallinfo2().fordblks;
        /* Trimmed pages still count as free: trim again only once the
         * amount held changed, i.e. something was freed since. */
        if (held >= TRIM_MIN_FREE && held != free_after_last) {
            malloc_trim(0);
            free_after_last = mallinfo2().fordblks;
        }
        pthread_mutex_lock(&trim.lock);
    }
    pthread_mutex_unlock(&trim.lock);
    return NULL;
}

int trim_start(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_destroy(&trim.wake);
    pthread_cond_init(&trim.wake, &attr);
    pthread_condattr_destroy(&attr);
    trim.stop = false;
    if (pthread_create(&trim.thread, NULL, trim_main, NULL) != 0)
        return -1;
    trim.running = true;
    return 0;
}

void trim_stop(void)
{
    if (!trim.running)
        return;
    pthread_mutex_lock(&trim.lock);
    trim.stop = true;
    pthread_cond_signal(&trim.wake);
    pthread_mutex_unlock(&trim.lock);
    pthread_join(trim.thread, NULL);
    trim.running = false;
}
