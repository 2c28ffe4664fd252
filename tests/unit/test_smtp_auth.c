/* test_smtp_auth.c - placeholder until the auth module lands. */
#include "tharness.h"

int
main(void)
{
	T_EXIT();
}
