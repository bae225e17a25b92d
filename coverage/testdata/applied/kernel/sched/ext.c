#include "sched.h"

static int one(void)
{
	return 1;
}

static int three(void)
{
	return 3;
}

static int two(void)
{
	return 2;
}

int sum(void)
{
	return one() + two() + three();
}
