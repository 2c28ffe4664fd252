/* test_route.c - placeholder until the routing module lands. */
#include "tharness.h"

int
main(void)
{
	T_EXIT();
}
