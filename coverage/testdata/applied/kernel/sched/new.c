int added(void)
{
	return 0;
}
