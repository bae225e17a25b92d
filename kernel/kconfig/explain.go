package kconfig

import (
	"fmt"
	"slices"
	"strings"
)

// Dropped is a symbol a fragment asked for that the configured kernel does
// not have as asked: olddefconfig dropped or changed it.
type Dropped struct {
	Request Assignment
	Got     string // its value in the final config, "n" when not set
	// Unmet are the dependencies that are off, e.g. "BPF_JIT" or
	// "PAHOLE_VERSION >= 122", each as written in the tree's Kconfig.
	Unmet []string
	// Reason says why, naming the unmet dependency, e.g. "depends on
	// BPF_JIT, which is not set (BPF_JIT off requested at b.config:3)".
	Reason string
}

func (d Dropped) String() string {
	got := "not set"
	if d.Got != "n" {
		got = "=" + d.Got
	}
	return fmt.Sprintf("%s (%s) is %s: %s", d.Request, d.Request.Where, got, d.Reason)
}

// checkRequests returns the requests the final config does not meet, each
// with the reason read from the tree's Kconfig (k may be nil when it could
// not be read).
func checkRequests(k *Rules, requests []Assignment, cfg map[string]string) []Dropped {
	byName := map[string]Assignment{}
	for _, r := range requests {
		byName[r.Sym] = r
	}
	var out []Dropped
	for _, r := range requests {
		if satisfied(r, cfg) {
			continue
		}
		d := Dropped{Request: r, Got: symValue(cfg, r.Sym)}
		if k == nil {
			d.Reason = "the tree's Kconfig could not be read to say why"
		} else {
			e := &explainer{k: k, cfg: cfg, requests: byName}
			d.Unmet, d.Reason = e.explain(r, 0)
		}
		out = append(out, d)
	}
	return out
}

type explainer struct {
	k        *Rules
	cfg      map[string]string
	requests map[string]Assignment
}

// maxDepth bounds how far the explanation follows a chain of dependencies.
const maxDepth = 3

// explain says why r is not met in the final config, and returns the unmet
// dependencies it names.
func (e *explainer) explain(r Assignment, depth int) ([]string, string) {
	defs := e.k.defs[r.Sym]
	if len(defs) == 0 {
		return nil, fmt.Sprintf("%s is not defined in this tree's Kconfig (misspelt, or not in this kernel version)", r.Sym)
	}
	if r.Value == "n" {
		return nil, e.forcedOn(r.Sym)
	}
	// The definition with the fewest unmet dependencies explains best.
	var best *symDef
	var bestUnmet []string
	for _, d := range defs {
		unmet := e.unmet(d)
		if best == nil || len(unmet) < len(bestUnmet) {
			best, bestUnmet = d, unmet
		}
	}
	at := fmt.Sprintf("%s:%d", best.file, best.line)
	if len(bestUnmet) > 0 {
		var parts []string
		for _, u := range bestUnmet {
			parts = append(parts, e.describe(u, depth))
		}
		return bestUnmet, at + " says it depends on " + strings.Join(parts, "; and on ")
	}
	switch {
	case r.Value == "m" && symValue(e.cfg, "MODULES") != "y":
		return []string{"MODULES"}, "=m needs MODULES, which is not set"
	case !best.prompt:
		return nil, at + ": " + e.noPrompt(best)
	case best.choice:
		return nil, at + ": it is an option of a choice, and another option of it was chosen"
	case best.typ == "int" || best.typ == "hex" || best.typ == "string":
		return nil, fmt.Sprintf("%s: its value became %s; the requested one may be out of its range", at, symValue(e.cfg, r.Sym))
	}
	return nil, at + ": its dependencies are met, yet olddefconfig did not keep it (a select or choice elsewhere?)"
}

// unmet returns the conjuncts of d's dependencies that are off.
func (e *explainer) unmet(d *symDef) []string {
	var out []string
	for _, dep := range d.deps {
		for _, c := range conjuncts(dep) {
			if eval(c, e.cfg) == triN && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// describe explains one unmet dependency: its symbols' values, and for a
// single symbol why that one is off.
func (e *explainer) describe(cond string, depth int) string {
	syms := symbols(cond)
	if len(syms) == 1 && (cond == syms[0] || cond == syms[0]+" = y" || cond == syms[0]+" != n") {
		return cond + ", " + e.whyOff(syms[0], depth)
	}
	var vals []string
	for _, s := range syms {
		vals = append(vals, s+"="+symValue(e.cfg, s))
	}
	if len(vals) == 0 {
		return cond
	}
	return cond + " (" + strings.Join(vals, ", ") + ")"
}

// whyOff says why sym is not set.
func (e *explainer) whyOff(sym string, depth int) string {
	if r, ok := e.requests[sym]; ok {
		if r.Value == "n" {
			return fmt.Sprintf("which %s turns off", r.Where)
		}
		if depth < maxDepth {
			_, why := e.explain(r, depth+1)
			return fmt.Sprintf("which %s asks for but is not set either: %s", r.Where, why)
		}
		return fmt.Sprintf("which %s asks for but is not set either", r.Where)
	}
	defs := e.k.defs[sym]
	if len(defs) == 0 {
		return "which this tree's Kconfig does not define for x86"
	}
	if depth < maxDepth {
		for _, d := range defs {
			if unmet := e.unmet(d); len(unmet) > 0 {
				var parts []string
				for _, u := range unmet {
					parts = append(parts, e.describe(u, depth+1))
				}
				return fmt.Sprintf("which is not set: %s:%d says it depends on %s", d.file, d.line, strings.Join(parts, "; and on "))
			}
		}
	}
	if !defs[0].prompt {
		return "which is not set: " + e.noPrompt(defs[0])
	}
	return "which is not set (add CONFIG_" + sym + "=y to a fragment)"
}

// noPrompt explains a symbol no fragment can set: on only through defaults
// and selects.
func (e *explainer) noPrompt(d *symDef) string {
	msg := d.name + " has no prompt, so no fragment can set it: it is on only by its defaults"
	sel := e.k.selectors[d.name]
	if len(sel) > 0 {
		var names []string
		for _, s := range sel {
			n := s.By
			if s.Cond != "" {
				n += " if " + s.Cond
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		const show = 6
		if len(names) > show {
			names = append(names[:show], fmt.Sprintf("%d more", len(names)-show))
		}
		msg += " or when selected by " + strings.Join(names, ", ")
	}
	return msg
}

// forcedOn explains why a symbol asked to be off is on.
func (e *explainer) forcedOn(sym string) string {
	var on []string
	for _, s := range e.k.selectors[sym] {
		if symValue(e.cfg, s.By) != "n" && (s.Cond == "" || eval(s.Cond, e.cfg) != triN) && !slices.Contains(on, s.By) {
			on = append(on, s.By)
		}
	}
	if len(on) > 0 {
		return "it is selected by " + strings.Join(on, ", ") + ", which " + plural(len(on), "is", "are") + " on"
	}
	if d := e.k.defs[sym][0]; !d.prompt {
		return sym + " has no prompt: its default turns it on and no fragment can turn it off"
	}
	return "something else in the config turns it on"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// satisfied reports whether the final config gives a the value it asked for.
// A module (=m) request is met by =y too: scxcheck builds without modules.
func satisfied(a Assignment, cfg map[string]string) bool {
	got, ok := cfg["CONFIG_"+a.Sym]
	switch a.Value {
	case "n":
		return !ok || got == "n"
	case "m":
		return got == "m" || got == "y"
	}
	return ok && normalizeValue(got) == normalizeValue(a.Value)
}

func normalizeValue(v string) string {
	if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
		return "0x" + strings.ToLower(v[2:])
	}
	return v
}
