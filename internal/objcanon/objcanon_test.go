package objcanon

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The objects in testdata are fixtures/cpuform.bpf.c compiled by clang-19
// with bpf2go's flags: -dir-a and -dir-b from the same source in two
// directories (clang numbered their BTF types differently, so the bytes
// differ), -changed from the same source with one constant changed
// (__sync_fetch_and_add(&nr_enqueue, 2)).

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func canon(t *testing.T, name string) string {
	t.Helper()
	s, err := Text(bytes.NewReader(read(t, name)))
	if err != nil {
		t.Fatalf("Text(%s): %v", name, err)
	}
	return s
}

func TestSameSourceTwoDirectoriesIsEqual(t *testing.T) {
	if bytes.Equal(read(t, "cpuform-dir-a.o"), read(t, "cpuform-dir-b.o")) {
		t.Fatal("testdata objects are byte-identical; they no longer show clang's BTF numbering differing")
	}
	a, b := canon(t, "cpuform-dir-a.o"), canon(t, "cpuform-dir-b.o")
	if a != b {
		t.Errorf("canonical text differs for the same source:\n%s", firstDiff(a, b))
	}
}

func TestChangedSourceIsNotEqual(t *testing.T) {
	a, c := canon(t, "cpuform-dir-a.o"), canon(t, "cpuform-changed.o")
	if a == c {
		t.Fatal("canonical text equal although a constant in the source changed")
	}
	if !strings.Contains(firstDiff(a, c), "imm: 2") {
		t.Errorf("diff does not show the changed immediate:\n%s", firstDiff(a, c))
	}
}

func TestTextNamesProgramsMapsAndTypes(t *testing.T) {
	s := canon(t, "cpuform-dir-a.o")
	for _, want := range []string{
		"program cpuform_enqueue type=StructOps",
		"map cpuform_ops type=StructOpsMap",
		`type Struct "sched_ext_ops" size=`,
		"<scx_bpf_dsq_insert___v2>",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("canonical text lacks %q", want)
		}
	}
}

func TestNotAnELFObject(t *testing.T) {
	if _, err := Text(strings.NewReader("not an object")); err == nil {
		t.Fatal("Text accepted a non-ELF input")
	}
	if _, err := File("testdata/missing.o"); err == nil || !strings.Contains(err.Error(), "missing.o") {
		t.Fatalf("File on a missing path: err = %v, want one naming the path", err)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "(one is a prefix of the other)"
}
