package sched

import (
	"slices"
	"testing"
)

func TestCmaskRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		nr   int
		cids []int
		size int
	}{
		{2, []int{1}, 16 + 8*2},
		{2, nil, 16 + 8*2},
		{64, []int{0, 63}, 16 + 8*2},
		{65, []int{64}, 16 + 8*3},
	} {
		b, err := EncodeCmask(tc.nr, tc.cids)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != tc.size {
			t.Errorf("EncodeCmask(%d, %v): %d bytes, want %d (SCX_CMASK_NR_WORDS has a +1)", tc.nr, tc.cids, len(b), tc.size)
		}
		got, err := DecodeCmask(b)
		if err != nil || !slices.Equal(got, tc.cids) {
			t.Errorf("DecodeCmask(EncodeCmask(%d, %v)) = %v, %v", tc.nr, tc.cids, got, err)
		}
	}
	if _, err := EncodeCmask(2, []int{2}); err == nil {
		t.Error("EncodeCmask accepted a cid outside the mask")
	}
}

// The kernel keeps a cmask's bits at their absolute position within 64-bit
// words: bits[cid/64 - base/64], bit cid%64 (kernel/sched/ext/cid.h).
func TestDecodeCmaskWithBase(t *testing.T) {
	b := make([]byte, 16+16)
	b[0] = 1 // base 1
	b[4] = 1 // nr_cids 1
	b[8] = 2 // alloc_words 2
	b[16] = 0x2
	got, err := DecodeCmask(b)
	if err != nil || !slices.Equal(got, []int{1}) {
		t.Errorf("DecodeCmask = %v, %v, want [1]", got, err)
	}
	if _, err := DecodeCmask(b[:20]); err == nil {
		t.Error("DecodeCmask accepted a truncated mask")
	}
}
