#ifndef EXHOOKD_TRIM_H
#define EXHOOKD_TRIM_H

/* Gives memory that malloc keeps after a burst (a connection flood, a
 * spike of big messages) back to the system: a thread that looks every
 * couple of seconds and trims when enough is held free. */

/* One thread for the process, as there is one server: started by
 * srv_start, stopped by srv_destroy. 0 on success, -1 when the thread
 * cannot start. */
int trim_start(void);
/* Stops the thread; harmless when it never started. */
void trim_stop(void);

#endif
