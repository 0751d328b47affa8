/* regmixctl fit: placeholder until its module lands (replaced by the owner of this file). */
#include <stdio.h>

#include "commands.h"

int cmd_fit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "regmixctl fit: not built yet\n");
    return 1;
}
