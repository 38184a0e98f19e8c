package manage

import (
	"fmt"
	"io"

	"github.com/fdbhook/fdbhook/pkg/plan"
)

// DryRun prints what a dry run of event op would do: the plan, every
// step, skip and refusal (plan.Format), changing nothing.
func DryRun(w io.Writer, op string, p *plan.Plan) {
	fmt.Fprintf(w, "dry run (%s): nothing is changed\n%s", op, p.Format())
}
