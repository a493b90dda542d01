package specs_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/specs"
)

// TestConformance runs the Ginkgo suite under plain go test. JUnit: the
// standard flag works for this package alone
// (go test ./specs -ginkgo.junit-report=$PWD/build/specs-junit.xml); under
// go test ./..., where a flag would reach every package, set the
// environment variable NATCHECK_JUNIT to an absolute path instead.
func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "natcheck conformance (azure-lb)")
}

var _ = ReportAfterSuite("natcheck JUnit report", func(r Report) {
	if path := os.Getenv("NATCHECK_JUNIT"); path != "" {
		Expect(reporters.GenerateJUnitReport(r, path)).To(Succeed())
	}
})

// implementations are the NATs under test in this suite. A live device
// joins with its own label (impl:linux-nft) and "slow".
var implementations = []specs.Impl{specs.Reference()}

var _ = Describe("azure-lb conformance", func() {
	for _, impl := range implementations {
		labels := Label(impl.Label())
		if impl.RealTime {
			labels = Label(impl.Label(), "slow")
		}
		Describe(impl.Name, labels, func() {
			var entries []TableEntry
			for _, c := range specs.Checks() {
				entries = append(entries, Entry(c.Text(), Label(c.ID.String()), c))
			}
			DescribeTable("checks",
				func(c specs.Check) {
					if c.Convention() && !impl.Reference {
						Skip("engine convention: checked on the reference only")
					}
					r := specs.Run(context.Background(), impl, c)
					Expect(r.Status).To(Equal(specs.Conforms), r.Report())
				},
				entries,
			)
		})
	}
})
