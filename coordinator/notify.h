/*
 * notify: tells the service manager how the daemon is doing (systemd's sd_notify: READY=1,
 * WATCHDOG=1, STOPPING=1). Built from notify_systemd.c when libsystemd is found, else from
 * notify_none.c, whose calls do nothing. Never fails the caller: a missing NOTIFY_SOCKET is normal.
 */
#ifndef REGMIX_COORD_NOTIFY_H
#define REGMIX_COORD_NOTIFY_H

/* The daemon serves: READY=1 with a status line. */
void notify_ready(const char *status);
/* Keep-alive for WatchdogSec (call at least twice per watchdog period; a no-op without one). */
void notify_watchdog(void);
/* The daemon is shutting down: STOPPING=1. */
void notify_stopping(void);

#endif
