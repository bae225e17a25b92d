#!/bin/bash
# mkpatch.sh SERIES RELPATH LINE NEWTEXT OUT COMMENT
# Replace line LINE of RELPATH in the SERIES tree with NEWTEXT (empty string with DELETE=1 deletes it); write a -p1 diff to OUT.
set -e
series=$1 rel=$2 line=$3 new=$4 out=$5 comment=$6
case $series in
7.2) tree=/root/.cache/scxcheck/build/trees/linux-source-7.2_7.2.13-1 ;;
7.3) tree=/work/scratch/k73 ;;
esac
tmp=$(mktemp -d)
mkdir -p $tmp/a/$(dirname $rel) $tmp/b/$(dirname $rel)
cp $tree/$rel $tmp/a/$rel
if [ -n "$DELETE" ]; then
  awk -v n=$line 'NR!=n' $tree/$rel > $tmp/b/$rel
else
  NEW="$new" awk -v n=$line 'NR==n{print ENVIRON["NEW"]; next} {print}' $tree/$rel > $tmp/b/$rel
fi
{ printf '%s\n' "$comment" | sed 's/^/# /'; (cd $tmp && diff -u a/$rel b/$rel) || true; } > $out
rm -rf $tmp
cat $out
