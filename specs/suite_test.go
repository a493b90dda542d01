package specs_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	. "github.com/onsi/gomega"

	"github.com/natcheck/natcheck/internal/modelnat"
	"github.com/natcheck/natcheck/reference"
	"github.com/natcheck/natcheck/specs"
)

// TestConformance runs the Ginkgo suite under plain go test. JUnit: the
// standard flag works for this package alone
// (go test ./specs -ginkgo.junit-report=$PWD/build/specs-junit.xml); under
// go test ./..., where a flag would reach every package, set the
// environment variable NATCHECK_JUNIT to an absolute path instead.
func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "natcheck conformance")
}

var _ = ReportAfterSuite("natcheck JUnit report", func(r Report) {
	if path := os.Getenv("NATCHECK_JUNIT"); path != "" {
		Expect(reporters.GenerateJUnitReport(r, path)).To(Succeed())
	}
})

// suites are the profiles under test and, per profile, the NATs its checks
// run against. A live device joins with its own label (impl:linux-nft)
// and "slow".
var suites = []struct {
	profile string
	impls   []specs.Impl
}{
	{reference.NameAzureLB, []specs.Impl{specs.Reference()}},
	{reference.NameLinux, []specs.Impl{specs.Engine(reference.Linux(reference.DefaultConntrack())), modelnat.Impl(reference.Linux(reference.DefaultConntrack()))}},
	{reference.NameAzureNATGW, []specs.Impl{specs.Engine(reference.AzureNATGW()), modelnat.Impl(reference.AzureNATGW())}},
	{reference.NameRFC, []specs.Impl{specs.Engine(reference.RFC()), modelnat.Impl(reference.RFC())}},
}

var _ = Describe("conformance", func() {
	for _, suite := range suites {
		checks, err := specs.ChecksFor(suite.profile)
		if err != nil {
			panic(err)
		}
		Describe(suite.profile, Label("profile:"+suite.profile), func() {
			for _, impl := range suite.impls {
				labels := Label(impl.Label())
				if impl.RealTime {
					labels = Label(impl.Label(), "slow")
				}
				Describe(impl.Name, labels, func() {
					var entries []TableEntry
					for _, c := range checks {
						entries = append(entries, Entry(c.Text(), Label(c.ID.String()), c))
					}
					DescribeTable("checks",
						func(c specs.Check) {
							if c.Convention() && !impl.Reference {
								Skip("engine convention: checked on the reference only")
							}
							r := specs.Run(context.Background(), impl, c)
							if r.Status == specs.NotChecked {
								Skip(r.Verdict()) // reported as skipped, never as a pass
							}
							Expect(r.Status).To(Equal(specs.Conforms), r.Report())
						},
						entries,
					)
				})
			}
		})
	}
})
