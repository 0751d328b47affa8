/* regmixctl sample: placeholder until its module lands (replaced by the owner of this file). */
#include <stdio.h>

#include "commands.h"

int cmd_sample(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "regmixctl sample: not built yet\n");
    return 1;
}
