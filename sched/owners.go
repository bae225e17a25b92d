package sched

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Owner is the sched_ext scheduler that owns a task, as the kernel records
// it in task_struct.scx.sched.
type Owner struct {
	PID, TGID int
	// CgroupID is the owner's cgroup: 1 for the root scheduler, the
	// sub-scheduler's cgroup inode otherwise; 0 when no scheduler owns it.
	CgroupID uint64
	// Level is 0 for the root, 1 for its children, ...; -1 for none.
	Level int
	// Name is the owner's ops name; "" for none.
	Name string
}

// Owners reads task ownership with the owners task iterator fixture.
type Owners struct {
	coll *ebpf.Collection
	prog *ebpf.Program
}

// LoadOwners loads the task iterator from its spec (fixtures.OwnersSpec).
func LoadOwners(spec *ebpf.CollectionSpec) (*Owners, error) {
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("sched: load the owners task iterator: %w", err)
	}
	prog := coll.Programs["owners"]
	if prog == nil {
		coll.Close()
		return nil, fmt.Errorf("sched: the owners task iterator has no program owners")
	}
	return &Owners{coll: coll, prog: prog}, nil
}

// Read runs the iterator once and returns one Owner per task (thread).
func (o *Owners) Read() ([]Owner, error) {
	it, err := link.AttachIter(link.IterOptions{Program: o.prog})
	if err != nil {
		return nil, fmt.Errorf("sched: attach the owners task iterator: %w", err)
	}
	defer it.Close()
	rd, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("sched: open the owners task iterator: %w", err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("sched: read the owners task iterator: %w", err)
	}
	return ParseOwners(b)
}

// Close releases the iterator.
func (o *Owners) Close() error {
	o.coll.Close()
	return nil
}

// ParseOwners parses the iterator's lines "<pid> <tgid> <cgid> <level> <name>".
func ParseOwners(b []byte) ([]Owner, error) {
	var out []Owner
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 {
			return nil, fmt.Errorf("sched: owners line %q: want 5 fields", sc.Text())
		}
		var o Owner
		var err error
		ints := []*int{&o.PID, &o.TGID, nil, &o.Level}
		for i, p := range ints {
			if p == nil {
				if o.CgroupID, err = strconv.ParseUint(f[i], 10, 64); err != nil {
					return nil, fmt.Errorf("sched: owners line %q: %w", sc.Text(), err)
				}
				continue
			}
			if *p, err = strconv.Atoi(f[i]); err != nil {
				return nil, fmt.Errorf("sched: owners line %q: %w", sc.Text(), err)
			}
		}
		if f[4] != "-" {
			o.Name = f[4]
		}
		out = append(out, o)
	}
	return out, sc.Err()
}
