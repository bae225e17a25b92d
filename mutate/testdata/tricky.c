// SPDX-License-Identifier: GPL-2.0
/*
 * Snippets in kernel style for the mutation operators: comments, strings,
 * character literals, macros and multi-line conditions around the code
 * they must edit, or leave alone. If (a < b) in a comment is no code.
 */
#include <linux/kernel.h>
#define MAX_DEPTH 4
#define CHECK(x) do {				\
		if ((x) < MAX_DEPTH)			\
			pr_info("x < depth\n");		\
	} while (0)

static const char *names = "a < b && c != d; return 0;";

static int depth_ok(struct sched *sch, int depth)
{
	int level = sch->level + 1;	/* if (level <= 2) */
	u64 *slot = NULL;

	if (depth >= MAX_DEPTH)
		return -EINVAL;
	if (sch->parent &&
	    sch->parent->level == level - 1 &&
	    !sch->dead)
		return 0;
	while (level > 0)
		level--;
	sch->count += 2;
	sch->name = "it's \"quoted\" if (x)";
	sch->sep = ';';
	pr_err("depth %d != %d\n", depth,
	       level);
	for_each_child(pos, sch)
		kick(pos);
	if (level < 32) {
		sch->ok = true;
	}
	CHECK(depth);
	WARN_ON_ONCE(level < 0);
	return level;
}

static bool is_root(struct sched *sch)
{
	if (!sch->parent)
		return true;
	return false;
}

static void *find(struct sched *sch)
{
	if (sch->level <= 0) goto out;
	return sch->level != 3 ? sch : NULL;
out:
	return NULL;
}
