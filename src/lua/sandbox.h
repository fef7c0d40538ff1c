#ifndef EXHOOKD_SANDBOX_H
#define EXHOOKD_SANDBOX_H

/* Limits what user scripts can do to the server process.
 *
 * Scripts are trusted to handle broker hooks, not to run the process: they
 * must not end it (os.exit), spawn programs (os.execute, io.popen), load
 * precompiled bytecode (which the Lua VM does not verify and can corrupt
 * memory with), or reach into the debug library beyond reading stack
 * information (debug.sethook would switch off the time limit, which is a
 * count hook; setupvalue/getregistry reach the server's own state). */

#include <lua.h>

/* Restricts a state that has the standard libraries open. Call once, right
 * after luaL_openlibs, before any user code runs.
 *
 * Removed: os.exit, os.execute, io.popen, and every debug.* function except
 * debug.traceback and debug.getinfo. Replaced with text-only versions:
 * load, loadfile, dofile and the Lua-file searcher of require
 * (package.searchers[2]); their other semantics are standard Lua's. */
void sandbox_apply(lua_State *L);

#endif
