/* regmixctl client commands: placeholder until the client lands (replaced by its owner). */
#include <stdio.h>

#include "commands.h"

int cmd_client(const char *endpoint, int argc, char **argv)
{
    (void)endpoint;
    (void)argc;
    fprintf(stderr, "regmixctl: unknown command '%s' (see regmixctl --help)\n", argv[0]);
    return 2;
}
