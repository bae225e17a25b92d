package sched

import (
	"debug/elf"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"weak"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// FillKernelEnums sets every rodata variable named "__SCX_<X>" in spec to the
// value of the enumerator "SCX_<X>" in kernel (any enum type), the scheme of
// the upstream tools/sched_ext loader. The fixtures declare these variables
// in fixtures/include/scxcheck.h, initialised to the vmlinux.h values they
// were compiled with, and use them instead of the enumerators, so an object
// built against one kernel's vmlinux.h stays correct on another. An
// enumerator missing from kernel is an error.
func FillKernelEnums(spec *ebpf.CollectionSpec, kernel *btf.Spec) error {
	want := make(map[string]*ebpf.VariableSpec)
	for name, v := range spec.Variables {
		if strings.HasPrefix(name, EnumVarPrefix) && v.Constant() {
			want[strings.TrimPrefix(name, "__")] = v
		}
	}
	if len(want) == 0 {
		return nil
	}

	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	values, err := KernelEnumValues(kernel, names...)
	if err != nil {
		return err
	}
	for n, v := range want {
		size, signed, err := intType(v)
		if err != nil {
			return fmt.Errorf("enum variable %w", err)
		}
		val := values[n]
		if !fits(val, size, signed) {
			return fmt.Errorf("kernel enumerator %s = %#x does not fit %s (%d bytes)", n, val, v.Name, size)
		}
		if err := putInt(v, size, val); err != nil {
			return fmt.Errorf("enum variable %s: %w", v.Name, err)
		}
	}
	return nil
}

// KernelEnumValues looks up enumerators by name across all enums of kernel.
// Signed enumerators are returned in two's complement. It fails if a name is
// missing or has two different values. The first call for a kernel spec
// indexes all its enumerators (one pass over the BTF); later calls reuse the
// index.
func KernelEnumValues(kernel *btf.Spec, names ...string) (map[string]uint64, error) {
	idx, err := enumIndexOf(kernel)
	if err != nil {
		return nil, err
	}
	found := make(map[string]uint64, len(names))
	var missing []string
	for _, n := range names {
		if idx.ambiguous[n] {
			return nil, fmt.Errorf("kernel enumerator %s has more than one value", n)
		}
		v, ok := idx.values[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		found[n] = v
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("kernel BTF lacks enumerators %s", strings.Join(missing, ", "))
	}
	return found, nil
}

type enumIndex struct {
	values    map[string]uint64
	ambiguous map[string]bool
}

// enumIndexes caches one index per kernel spec without keeping the spec
// alive: keys are weak pointers, and an entry is dropped when its spec is
// collected.
var enumIndexes sync.Map // weak.Pointer[btf.Spec] -> *enumIndex

func enumIndexOf(kernel *btf.Spec) (*enumIndex, error) {
	if kernel == nil {
		return nil, errors.New("no kernel BTF")
	}
	key := weak.Make(kernel)
	if idx, ok := enumIndexes.Load(key); ok {
		return idx.(*enumIndex), nil
	}
	idx := &enumIndex{values: make(map[string]uint64), ambiguous: make(map[string]bool)}
	for typ, err := range kernel.All() {
		if err != nil {
			return nil, fmt.Errorf("reading kernel BTF: %w", err)
		}
		e, ok := typ.(*btf.Enum)
		if !ok {
			continue
		}
		for _, ev := range e.Values {
			if old, dup := idx.values[ev.Name]; dup && old != ev.Value {
				idx.ambiguous[ev.Name] = true
			}
			idx.values[ev.Name] = ev.Value
		}
	}
	actual, loaded := enumIndexes.LoadOrStore(key, idx)
	if !loaded {
		runtime.AddCleanup(kernel, func(k weak.Pointer[btf.Spec]) { enumIndexes.Delete(k) }, key)
	}
	return actual.(*enumIndex), nil
}

// exitKinds maps the values of the kernel's enum scx_exit_kind to names.
func exitKinds(kernel *btf.Spec) (map[int64]string, error) {
	var e *btf.Enum
	if err := kernel.TypeByName("scx_exit_kind", &e); err != nil {
		return nil, fmt.Errorf("kernel BTF: enum scx_exit_kind: %w", err)
	}
	kinds := make(map[int64]string, len(e.Values))
	for _, v := range e.Values {
		k := int64(v.Value)
		if !e.Signed && e.Size == 4 {
			k = int64(int32(uint32(v.Value)))
		}
		kinds[k] = v.Name
	}
	return kinds, nil
}

// ExitKindNames returns the kernel's enum scx_exit_kind as value -> name,
// e.g. 1024 -> "SCX_EXIT_ERROR".
func ExitKindNames(kernel *btf.Spec) (map[int64]string, error) {
	return exitKinds(kernel)
}

// LoadVmlinuxBTF reads the BTF of an ELF vmlinux file. Unlike btf.LoadSpec
// it also accepts a stripped vmlinux (as extracted from a distribution
// vmlinuz, which has no symbol table): it falls back to the raw .BTF
// section, which is what the running kernel exposes as
// /sys/kernel/btf/vmlinux.
func LoadVmlinuxBTF(path string) (*btf.Spec, error) {
	spec, err := btf.LoadSpec(path)
	if err == nil {
		return spec, nil
	}
	f, ferr := elf.Open(path)
	if ferr != nil {
		return nil, fmt.Errorf("%s: %w", path, ferr)
	}
	defer f.Close()
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, fmt.Errorf("%s: no .BTF section (btf.LoadSpec: %v)", path, err)
	}
	spec, err = btf.LoadSpecFromReader(sec)
	if err != nil {
		return nil, fmt.Errorf("%s: .BTF section: %w", path, err)
	}
	return spec, nil
}
