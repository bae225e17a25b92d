/* A decoy: the same sum() as ext.c, so that only the file the other hunks
 * of ext.c went to tells where its second hunk is. */
int sum(void)
{
	return one() + two() + three();
}
