// Package objcanon renders a compiled BPF ELF object as canonical text, so
// that two compilations of the same source compare equal even when their
// bytes do not.
//
// clang-19 numbers BTF types in an order that depends on its own memory
// layout, which changes with the length of the directory it runs in: the
// same fixture compiled in two checkouts gives objects of equal size whose
// BTF type IDs (and the references to them) are permuted. The text produced
// here names every type by its shape instead of its ID and lists programs,
// maps and types in sorted order; everything the loader and the kernel see
// (instructions, relocations, map definitions and initial contents, type
// layouts, function signatures) is in it, so a change to a fixture's source
// still changes the text.
package objcanon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// File renders the object at path; see Text.
func File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("canonical form of BPF object: %w", err)
	}
	defer f.Close()
	s, err := Text(f)
	if err != nil {
		return "", fmt.Errorf("canonical form of BPF object %s: %w", path, err)
	}
	return s, nil
}

// Text renders a BPF ELF object as canonical text: its programs, its maps,
// and its BTF types, each section sorted, with types written out by shape.
func Text(rd io.ReaderAt) (string, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(rd)
	if err != nil {
		return "", fmt.Errorf("load collection spec: %w", err)
	}
	types, err := btf.LoadSpecFromReader(rd)
	if err != nil && !errors.Is(err, btf.ErrNotFound) {
		return "", fmt.Errorf("load BTF: %w", err)
	}

	var b strings.Builder
	for _, name := range sortedKeys(spec.Programs) {
		p := spec.Programs[name]
		fmt.Fprintf(&b, "program %s type=%v attach=%v to=%q section=%q flags=%#x license=%q\n",
			p.Name, p.Type, p.AttachType, p.AttachTo, p.SectionName, p.Flags, p.License)
		fmt.Fprintf(&b, "%v", p.Instructions)
	}
	for _, name := range sortedKeys(spec.Maps) {
		writeMap(&b, spec.Maps[name])
	}
	if types != nil {
		var lines []string
		for typ, err := range types.All() {
			if err != nil {
				return "", fmt.Errorf("iterate BTF types: %w", err)
			}
			lines = append(lines, "type "+shape(typ, true, 0))
		}
		sort.Strings(lines)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String(), nil
}

func writeMap(b *strings.Builder, m *ebpf.MapSpec) {
	fmt.Fprintf(b, "map %s type=%v key=%d value=%d max=%d flags=%#x pinning=%v extra=%#x tags=%q\n",
		m.Name, m.Type, m.KeySize, m.ValueSize, m.MaxEntries, m.Flags, m.Pinning, m.MapExtra, m.Tags)
	if m.Key != nil {
		fmt.Fprintf(b, "  key type %s\n", shape(m.Key, false, 0))
	}
	if m.Value != nil {
		fmt.Fprintf(b, "  value type %s\n", shape(m.Value, false, 0))
	}
	for _, kv := range m.Contents {
		fmt.Fprintf(b, "  content %v = %v\n", kv.Key, kv.Value)
	}
	if m.Extra != nil && m.Extra.Len() > 0 {
		extra, _ := io.ReadAll(io.NewSectionReader(m.Extra, 0, m.Extra.Size()))
		fmt.Fprintf(b, "  extra % x\n", extra)
	}
	if m.InnerMap != nil {
		var inner strings.Builder
		writeMap(&inner, m.InnerMap)
		for _, l := range strings.SplitAfter(strings.TrimSuffix(inner.String(), "\n"), "\n") {
			b.WriteString("  inner " + l)
		}
		b.WriteByte('\n')
	}
}

// maxDepth bounds how deep anonymous types are written inline; a named
// type is always written by kind and name once below the top level, so
// only anonymous chains can reach it.
const maxDepth = 12

// shape writes typ without type IDs. At the top level (full) a named type
// is written out in full; below it, named types are referred to by kind and
// name, and anonymous ones are written inline.
func shape(typ btf.Type, full bool, depth int) string {
	if depth > maxDepth {
		return "..."
	}
	name := typ.TypeName()
	if !full && name != "" {
		return fmt.Sprintf("%s %q", kind(typ), name)
	}
	ref := func(t btf.Type) string { return shape(t, false, depth+1) }

	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %q", kind(typ), name)
	switch t := typ.(type) {
	case *btf.Void:
	case *btf.Int:
		fmt.Fprintf(&b, " size=%d encoding=%v", t.Size, t.Encoding)
	case *btf.Float:
		fmt.Fprintf(&b, " size=%d", t.Size)
	case *btf.Pointer:
		fmt.Fprintf(&b, " to (%s)", ref(t.Target))
	case *btf.Array:
		fmt.Fprintf(&b, " [%d] of (%s) index (%s)", t.Nelems, ref(t.Type), ref(t.Index))
	case *btf.Struct:
		writeMembers(&b, t.Size, t.Members, ref)
	case *btf.Union:
		writeMembers(&b, t.Size, t.Members, ref)
	case *btf.Enum:
		fmt.Fprintf(&b, " size=%d signed=%v {", t.Size, t.Signed)
		for _, v := range t.Values {
			fmt.Fprintf(&b, " %s=%d", v.Name, v.Value)
		}
		b.WriteString(" }")
	case *btf.Fwd:
		fmt.Fprintf(&b, " kind=%v", t.Kind)
	case *btf.Typedef:
		fmt.Fprintf(&b, " = (%s) tags=%q", ref(t.Type), t.Tags)
	case *btf.Volatile:
		fmt.Fprintf(&b, " (%s)", ref(t.Type))
	case *btf.Const:
		fmt.Fprintf(&b, " (%s)", ref(t.Type))
	case *btf.Restrict:
		fmt.Fprintf(&b, " (%s)", ref(t.Type))
	case *btf.TypeTag:
		fmt.Fprintf(&b, " %q (%s)", t.Value, ref(t.Type))
	case *btf.Func:
		fmt.Fprintf(&b, " linkage=%v tags=%q param-tags=%q proto (%s)", t.Linkage, t.Tags, t.ParamTags, ref(t.Type))
	case *btf.FuncProto:
		fmt.Fprintf(&b, " returns (%s) (", ref(t.Return))
		for i, p := range t.Params {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s", p.Name, ref(p.Type))
		}
		b.WriteString(")")
	case *btf.Var:
		fmt.Fprintf(&b, " linkage=%v tags=%q (%s)", t.Linkage, t.Tags, ref(t.Type))
	case *btf.Datasec:
		fmt.Fprintf(&b, " size=%d {", t.Size)
		for _, v := range t.Vars {
			fmt.Fprintf(&b, " @%d+%d %s;", v.Offset, v.Size, ref(v.Type))
		}
		b.WriteString(" }")
	default:
		fmt.Fprintf(&b, " %v", t)
	}
	return b.String()
}

func writeMembers(b *bytes.Buffer, size uint32, members []btf.Member, ref func(btf.Type) string) {
	fmt.Fprintf(b, " size=%d {", size)
	for _, m := range members {
		fmt.Fprintf(b, " %s @%d:%d (%s);", m.Name, m.Offset, m.BitfieldSize, ref(m.Type))
	}
	b.WriteString(" }")
}

// kind names a BTF type's kind without its ID (Go type name, e.g. "Struct").
func kind(typ btf.Type) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", typ), "*btf.")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
