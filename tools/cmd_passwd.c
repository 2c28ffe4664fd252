/* cmd_passwd.c - placeholder until the auth module lands. */
#include "tools.h"

int
cmd_passwd(struct tools_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return tools_fail("passwd", "not built yet");
}
