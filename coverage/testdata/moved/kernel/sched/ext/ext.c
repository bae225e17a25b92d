#include "sched.h"

static int one(void)
{
	return 1;
}

/* three() is what sum() adds last. */
static int three(void)
{
	int v = 3;

	return v;
}

static int two(void)
{
	return 2;
}

static int four(void)
{
	return 4;
}

int sum(void)
{
	return one() + two() + three();
}
