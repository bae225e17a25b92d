// Command objcanon prints the canonical text of BPF ELF objects (see package
// objcanon); make check-generate diffs it to tell a real change in a fixture
// from clang numbering BTF types differently.
package main

import (
	"fmt"
	"os"

	"github.com/scxcheck/scxcheck/internal/objcanon"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: objcanon FILE.o")
		os.Exit(2)
	}
	s, err := objcanon.File(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "objcanon:", err)
		os.Exit(1)
	}
	fmt.Print(s)
}
