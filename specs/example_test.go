package specs_test

import (
	"context"
	"fmt"

	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// Run the checks of B11 (a RST releases a flow 15 s later) against the
// reference engine and against a mutant that holds for 14 s, and print
// the matrix: what natcheck verify prints.
func ExampleVerify() {
	mutant, err := specs.ImplByName("mutant:rst-hold-14s")
	if err != nil {
		fmt.Println(err)
		return
	}
	impls := []specs.Impl{specs.Reference(), mutant}
	m, err := specs.Verify(context.Background(), impls, specs.Checks(), specs.Filter{reference.B11}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("conforms:", m.Conforms())
	for _, r := range m.Rows {
		for i, c := range r.Cells {
			fmt.Printf("%s on %s: %s\n", r.ID, m.Impls[i], c.Status)
		}
	}
	// Output:
	// conforms: false
	// B11 on reference: conforms
	// B11 on mutant:rst-hold-14s: fails
}
