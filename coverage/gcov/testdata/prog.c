/* A tiny program for the gcov package's tests: see gen.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

static int square(int x)
{
	return x * x;
}

static int cube(int x)
{
	return x * x * x;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0;
	int sum = 0;

	if (n > 0)
		sum = square(n);
	else
		sum = cube(n);
	for (int i = 0; i < n; i++)
		sum += clamp(i, 1, 2);
	printf("%d\n", sum);
	return 0;
}
