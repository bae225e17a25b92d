#!/bin/sh
# Regenerates the fixtures of the gcov package's tests from prog.c and
# util.h with Debian's gcc 12 (the compiler scxcheck's kernels are built
# with):
#
#   prog.gcno           the notes, written by the compiler;
#   run1.gcda           the data of `prog 3` (square, the loop, clamp);
#   run2.gcda           the data of `prog` (cube, no loop);
#   run1.json, run2.json  what `gcov-12 --json-format --stdout
#                       --branch-probabilities` says of each.
#
# The program is built in a fixed directory, /tmp/scxcheck-gcov-fixture,
# because the .gcno records the compile directory
# (current_working_directory in gcov's JSON, the root of the source paths)
# and the program writes its .gcda at the absolute path of its object. The
# tests never use that directory: gcov.Tool copies each .gcno/.gcda pair into
# a temporary directory, and the tests make paths relative to the fixed one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=/tmp/scxcheck-gcov-fixture
rm -rf "$dir"
mkdir -p "$dir"
cp "$here/prog.c" "$here/util.h" "$dir/"
cd "$dir"
gcc-12 --coverage -O0 -o prog prog.c
cp prog.gcno "$here/"
./prog 3 >/dev/null
mv prog.gcda "$here/run1.gcda"
./prog >/dev/null
mv prog.gcda "$here/run2.gcda"
for r in run1 run2; do
	cp "$here/$r.gcda" prog.gcda
	gcov-12 --json-format --stdout --branch-probabilities prog.gcda >"$here/$r.json"
done
rm -rf "$dir"
