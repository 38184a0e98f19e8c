package hook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// action is what a libvirt operation means to fdbhook.
type action int

const (
	ignore action = iota
	applyPlan
	cleanup
	markIncoming // a live migration to this host begins (migration.go)
)

// hookOp is one row of a domain hook's operation table.
type hookOp struct {
	act action
	// mayFail: a non-zero exit here stops the guest from starting, which is
	// what on_error = "fail" asks for. Where libvirt would kill a running
	// guest instead (reconnect, attach) or ignores the exit (stop), fdbhook
	// always exits 0 and logs.
	mayFail bool
}

// qemuOps maps the events fdbhook acts on (events.Qemu) to what it does.
// Any other event — prepare, started, restore, operations of newer libvirt
// versions — is ignored: no kernel change, no output, exit 0 (the installed
// binary exits in package qemuexit's init already). migrate and restore in
// particular must print nothing: libvirt reads their stdout as replacement
// domain XML.
var qemuOps = map[[2]string]hookOp{
	{"start", "begin"}:     {act: applyPlan, mayFail: true},
	{"reconnect", "begin"}: {act: applyPlan},
	{"attach", "begin"}:    {act: applyPlan},
	{"stopped", "end"}:     {act: cleanup},
	{"release", "end"}:     {act: cleanup},
	{"migrate", "begin"}:   {act: markIncoming},
}

// domainHook is what tells the qemu and lxc hooks apart: the events acted
// on (package events), the operation table, and how a start is planned.
type domainHook struct {
	acts  map[[2]string]bool
	ops   map[[2]string]hookOp
	start startPlanner
}

// startPlanner plans an apply event; incoming reports a live migration to
// this host, whose entries wait for the resume.
type startPlanner func(r *Runner, ev *event, v PlanView) (p *plan.Plan, incoming bool, err error)

var qemuDomain = domainHook{acts: events.Qemu, ops: qemuOps, start: (*Runner).qemuStart}

// event is one hook call being carried out.
type event struct {
	cfg    *config.Config
	domain string
	op     string
	act    action
	dry    bool
	log    *logrus.Entry
	g      *guest.Guest
	// counted: the run is in the run counts (under the lock).
	counted bool
}

// RunQemu runs the qemu hook with the arguments after the program name and
// returns the exit code.
func (r *Runner) RunQemu(args []string) int {
	return r.dispatch(args, qemuProgram, func(domain, op, subop, _ string, dry bool) int {
		return r.domainHook(qemuDomain, domain, op, subop, dry)
	})
}

// domainHook handles one libvirt event of a domain hook. It never writes
// to stdout. An operation the table ignores returns before the
// configuration is read or the log opened: most of a guest's hook calls
// are such.
func (r *Runner) domainHook(h domainHook, domain, op, subop string, dry bool) int {
	row, known := h.ops[[2]string{op, subop}]
	if !h.acts[[2]string{op, subop}] || !known || row.act == ignore {
		return ExitOK
	}
	cfg, err, logErr := r.configure()
	if logErr != nil {
		fmt.Fprintf(r.Stderr, "fdbhook: %s: %v\n", domain, logErr)
		r.countLocked(op, true, dry)
		if row.mayFail {
			return ExitConfig
		}
		return ExitOK
	}
	ev := &event{cfg: cfg, domain: domain, op: op, act: row.act, dry: dry, log: r.log.WithField("guest", domain)}
	if err == nil {
		err = r.domainEvent(h, ev)
	}
	if err != nil && !ev.counted {
		r.countLocked(op, true, dry)
	}
	return r.exit(ev, subop, row, err)
}

// exit turns an event's outcome into the exit code, logging a failure once.
func (r *Runner) exit(ev *event, subop string, row hookOp, err error) int {
	if err == nil {
		return ExitOK
	}
	switch {
	case !row.mayFail:
		ev.log.Errorf("%s %s: %v (exit 0: failing here would not undo anything and could kill the guest)", ev.op, subop, err)
		return ExitOK
	case ev.cfg != nil && ev.cfg.OnError == config.Warn && ExitCode(err) == ExitRefused:
		ev.log.Warnf("%v; on_error = \"warn\": the guest starts with its ports unmanaged", err)
		return ExitOK
	}
	r.sys.WithField("guest", ev.domain).Errorf("%s %s: %v", ev.op, subop, err) // stderr gets the one line below
	// libvirt shows this line to the admin: whatever the cause quotes, it
	// stays one line.
	fmt.Fprintf(r.Stderr, "fdbhook: %s\n", config.OneLine(fmt.Sprintf("%s: %v", ev.domain, err)))
	return ExitCode(err)
}

// domainEvent carries out one event in stages: read the guest, take the
// lock, plan against the kernel and libvirt's files, then print (dry run)
// or carry out the plan.
func (r *Runner) domainEvent(h domainHook, ev *event) (err error) {
	if !ev.cfg.Present || ev.cfg.Empty() {
		ev.log.Debugf("%s: no bridges or networks configured in %s: nothing managed", ev.op, ev.cfg.Path)
		return nil
	}
	if ev.g, err = r.readGuest(ev); err != nil {
		return err
	}
	if ev.act == markIncoming {
		err = r.markIncoming(ev.g, ev.dry, ev.log)
		ev.counted = r.countLocked(ev.op, err != nil, ev.dry)
		return err
	}
	if !ev.dry {
		unlock, lerr := r.lock()
		if lerr != nil {
			return lerr
		}
		defer unlock()
		defer func() { ev.counted = r.countRun(ev.op, err != nil, ev.log) }() // before unlock: the count needs the lock
	}
	k, err := r.OpenKernel()
	if err != nil {
		return err
	}
	defer k.Close()
	if ev.act == applyPlan {
		prefetch(k, ev.g)
	}
	p, incoming, err := r.plan(h, ev, PlanView{Reader: k, Files: libvirt.New(r.Libvirt)})
	if err != nil {
		return err
	}
	if ev.dry {
		fmt.Fprintf(r.Stderr, "dry run (%s): nothing is changed\n%s", ev.op, p.Format())
		return nil
	}
	r.logPlan(p, ev.log)
	return r.carryOut(ev, k, p, incoming)
}

// readGuest reads the domain XML on stdin: malformed input is ExitInput,
// an I/O failure ExitRefused.
func (r *Runner) readGuest(ev *event) (*guest.Guest, error) {
	g, err := guest.Read(r.Stdin)
	if err != nil {
		code := ExitInput
		if !errors.Is(err, guest.ErrInput) {
			code = ExitRefused
		}
		return nil, &ExitError{Code: code, Err: err}
	}
	if g.Name != ev.domain {
		ev.log.Warnf("the XML on stdin is for guest %q: using it", g.Name)
	}
	return g, nil
}

// plan makes the event's plan: the hook's start plan, or the stop plan.
func (r *Runner) plan(h domainHook, ev *event, v PlanView) (p *plan.Plan, incoming bool, err error) {
	if ev.act == applyPlan {
		return h.start(r, ev, v)
	}
	p, err = plan.Stop(ev.cfg, ev.g, v)
	if !ev.dry {
		r.clearMark(ev.g.Name, ev.log)
	}
	return p, false, err
}

// qemuStart plans a QEMU guest's start; at start begin, one that is a live
// migration's destination leaves its entries for the resume.
func (r *Runner) qemuStart(ev *event, v PlanView) (*plan.Plan, bool, error) {
	p, err := plan.Start(ev.cfg, ev.g, v)
	if err != nil || ev.op != "start" {
		return p, false, err
	}
	return r.forIncoming(p, v, ev.g, ev.dry, ev.log)
}

// carryOut applies or cleans up what the plan says; a plan with refusals
// changes nothing and is the event's error.
func (r *Runner) carryOut(ev *event, k model.ReadWriter, p *plan.Plan, incoming bool) error {
	if ev.act == cleanup {
		if err := apply.Cleanup(k, p.Steps); err != nil {
			return err
		}
		if len(p.Steps) > 0 {
			ev.log.Infof("%s: cleaned up %d leftover entries/ports", ev.op, len(p.Steps))
		}
		return nil
	}
	if len(p.Refusals) > 0 {
		msgs := make([]string, len(p.Refusals))
		for i, rf := range p.Refusals {
			msgs[i] = rf.Error()
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	if err := apply.Apply(k, p.Steps); err != nil {
		return err
	}
	if incoming {
		r.markPending(ev.g, ev.log)
	}
	for _, s := range p.Steps {
		ev.log.Infof("%s: %s", ev.op, s)
	}
	if len(p.Steps) == 0 {
		ev.log.Debugf("%s: nothing to change", ev.op)
	}
	return nil
}

// countRun adds the run to the counts in the run directory, for the
// metrics, and reports whether it did. The caller holds the lock. A count
// that cannot be written is logged (when log is set) and changes nothing
// about the run.
func (r *Runner) countRun(op string, failed bool, log *logrus.Entry) bool {
	if r.RunDir == "" {
		return false
	}
	if err := r.RunDir.CountHookRun(op, failed); err != nil {
		if log != nil {
			log.Warnf("%s: counting the run: %v", op, err)
		}
		return false
	}
	return true
}

// countLocked counts a run that did not take the lock for its work: one
// that failed before (a bad configuration, bad input) or needs none (the
// mark of an incoming migration). It takes the lock for the count, and
// reports whether it counted. Dry runs are not counted.
func (r *Runner) countLocked(op string, failed, dry bool) bool {
	if dry || r.RunDir == "" {
		return false
	}
	unlock, err := r.lock()
	if err != nil {
		return false
	}
	defer unlock()
	var log *logrus.Entry
	if r.log != nil {
		log = r.log.WithField("operation", op)
	}
	return r.countRun(op, failed, log)
}

func (r *Runner) logPlan(p *plan.Plan, log *logrus.Entry) {
	for _, s := range p.Skips {
		log.Debugf("%s %s: skipped: %s", s.NIC, s.MAC, s.Reason)
	}
	for _, n := range p.Notes {
		log.Info(n)
	}
	for _, w := range p.Warnings {
		log.Warn(w)
	}
}

const qemuUsage = `Usage:
  %[1]s DOMAIN OPERATION SUB-OPERATION EXTRA   (as libvirt calls it; XML on stdin)
  %[1]s --dry-run DOMAIN OPERATION SUB-OPERATION EXTRA
  %[1]s --help | --version

fdbhook's libvirt qemu hook (/etc/libvirt/hooks/qemu.d/fdbhook). fdbhook keeps
a Linux bridge's MAC table (FDB) in step with the guests on it: at every guest
start it turns off learning and unicast flooding on each managed guest tap and
adds a static FDB entry for the guest's MAC on that tap, so unknown unicast is
no longer copied to every guest and a guest that changes its MAC receives
nothing. At guest stop it removes entries that were left behind.

Operations:
  start begin, reconnect begin, attach begin   apply to every managed NIC
  stopped end, release end                     clean up what is left
  migrate begin                                mark an incoming live migration
                                               (its start begin then turns
                                               flooding off but leaves the
                                               static entries for the resume)
  anything else                                nothing (exit 0)

A NIC is managed when its bridge is listed in "bridges" or its libvirt network
in "networks", its <target dev> is a tap enslaved to that bridge, and the
guest's metadata does not opt it out. Only taps are ever changed.

  --dry-run        run one hook event without changing anything; the plan
                   (every port, flag and entry, every skipped NIC and why)
                   goes to stderr. FDBHOOK_DRY_RUN=1 does the same.

Debug one event by hand:
  virsh dumpxml GUEST | FDBHOOK_DRY_RUN=1 %[1]s GUEST start begin -

The admin commands (status, doctor, reconcile, explain) are the fdbhook
command: see 'fdbhook --help'.

Environment:
  FDBHOOK_CONFIG      configuration file (default /etc/fdbhook/fdbhook.toml;
                      libvirt passes no environment, so hooks it runs use the default)
  FDBHOOK_DRY_RUN=1   print the plan to stderr, change nothing
  FDBHOOK_LOG_LEVEL   debug|info|warning|error, on stderr and syslog

Exit codes:
  0  done, nothing to do, or on_error = "warn"
  1  a managed NIC could not be managed (the guest does not start; nothing left applied)
  2  bad command line
  3  bad configuration file
  4  bad hook input (malformed or oversized XML)
`
