#include <systemd/sd-daemon.h>

#include "notify.h"

void notify_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "serving");
}

void notify_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
}

void notify_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}
