/*
 * test_coordinator_notify: under systemd (Type=notify) the coordinator says READY=1 once its
 * database is open and its sockets are bound, pings WATCHDOG=1 from its loop, and says
 * STOPPING=1 on SIGTERM. No systemd runs here: the test binds its own NOTIFY_SOCKET (a unix
 * datagram socket) and reads what arrives. Skipped when built without libsystemd.
 */
#include <sys/un.h>

#include "config.h"
#include "coord_harness.h"
#include "test.h"

static coord_harness_t H;

/* Reads datagrams for up to ms; returns 1 when one contained `what`. */
static int wait_for(int fd, const char *what, int ms)
{
    char buf[512];
    for (int waited = 0; waited < ms; waited += 10) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
        if (n > 0) {
            buf[n] = '\0';
            if (strstr(buf, what))
                return 1;
            continue;
        }
        coord_harness_sleep_ms(10);
    }
    return 0;
}

int main(void)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/regmix-notify-%d.sock", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "2000000", 1);
    const char *extra[] = {"--heartbeat-ms", "100", NULL};
    int r = coord_harness_start(&H, extra);
    CHECK_MSG(r == 0, "coordinator did not start: %d", r);
    if (r == 0) {
        CHECK(wait_for(fd, "READY=1", 3000));
        CHECK(wait_for(fd, "WATCHDOG=1", 3000));
        kill(H.pid, SIGTERM);
        CHECK(wait_for(fd, "STOPPING=1", 3000));
        CHECK_INT_EQ(coord_harness_stop(&H, SIGTERM), 0);
    }
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    if (test__failures)
        coord_harness_dump_log(&H);
    coord_harness_cleanup(&H);
    return test_finish();
}
