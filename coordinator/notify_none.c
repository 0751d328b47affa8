#include "notify.h"

void notify_ready(const char *status)
{
    (void)status;
}

void notify_watchdog(void)
{
}

void notify_stopping(void)
{
}
