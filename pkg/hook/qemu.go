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

// qemuOp is one row of the operation table.
type qemuOp struct {
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
var qemuOps = map[[2]string]qemuOp{
	{"start", "begin"}:     {act: applyPlan, mayFail: true},
	{"reconnect", "begin"}: {act: applyPlan},
	{"attach", "begin"}:    {act: applyPlan},
	{"stopped", "end"}:     {act: cleanup},
	{"release", "end"}:     {act: cleanup},
	{"migrate", "begin"}:   {act: markIncoming},
}

// RunQemu runs the qemu hook with the arguments after the program name and
// returns the exit code.
func (r *Runner) RunQemu(args []string) int {
	return r.dispatch(args, qemuProgram, r.qemuHook)
}

// qemuHook handles one libvirt event. It never writes to stdout. An
// operation the table ignores returns before the configuration is read or
// the log opened: three of a guest's five hook calls are such.
func (r *Runner) qemuHook(domain, op, subop, extra string, dry bool) int {
	row, known := qemuOps[[2]string{op, subop}]
	if !events.Qemu[[2]string{op, subop}] || !known || row.act == ignore {
		return ExitOK
	}
	cfg, cfgErr := r.loadConfig()
	level := "info"
	if cfgErr == nil {
		level = cfg.LogLevel
	}
	if err := r.setupLog(level, true); err != nil {
		fmt.Fprintf(r.Stderr, "fdbhook: %s: %v\n", domain, err)
		if row.mayFail {
			return ExitConfig
		}
		return ExitOK
	}
	log := r.log.WithField("guest", domain)
	err := cfgErr
	if err == nil {
		err = r.qemuEvent(cfg, domain, op, row.act, dry, log)
	}
	if err == nil {
		return ExitOK
	}
	msg := fmt.Sprintf("%s: %v", domain, err)
	switch {
	case !row.mayFail:
		log.Errorf("%s %s: %v (exit 0: failing here would not undo anything and could kill the guest)", op, subop, err)
		return ExitOK
	case cfg != nil && cfg.OnError == config.Warn && ExitCode(err) == ExitRefused:
		log.Warnf("%v; on_error = \"warn\": the guest starts with its ports unmanaged", err)
		return ExitOK
	}
	r.sys.WithField("guest", domain).Errorf("%s %s: %v", op, subop, err) // stderr gets the one line below
	// libvirt shows this line to the admin: whatever the cause quotes, it
	// stays one line.
	fmt.Fprintf(r.Stderr, "fdbhook: %s\n", config.OneLine(msg))
	return ExitCode(err)
}

// qemuEvent plans and carries out one event.
func (r *Runner) qemuEvent(cfg *config.Config, domain, op string, act action, dry bool, log *logrus.Entry) (err error) {
	if !cfg.Present || cfg.Empty() {
		log.Debugf("%s: no bridges or networks configured in %s: nothing managed", op, cfg.Path)
		return nil
	}
	g, err := guest.Read(r.Stdin)
	if err != nil {
		code := ExitInput
		if !errors.Is(err, guest.ErrInput) {
			code = ExitRefused
		}
		return &ExitError{Code: code, Err: err}
	}
	if g.Name != domain {
		log.Warnf("the XML on stdin is for guest %q: using it", g.Name)
	}
	if act == markIncoming {
		return r.markIncoming(g, dry, log)
	}
	if !dry {
		unlock, lerr := r.lock()
		if lerr != nil {
			return lerr
		}
		defer unlock()
		defer func() { r.countRun(op, err != nil, log) }() // before unlock: the count needs the lock
	}
	k, err := r.OpenKernel()
	if err != nil {
		return err
	}
	defer k.Close()
	v := PlanView{Reader: k, Files: libvirt.New(r.Libvirt)}
	var p *plan.Plan
	incoming := false
	if act == applyPlan {
		prefetch(k, g)
		p, err = plan.Start(cfg, g, v)
		if err == nil && op == "start" {
			p, incoming, err = r.forIncoming(p, v, g, dry, log)
		}
	} else {
		p, err = plan.Stop(cfg, g, v)
		if !dry {
			r.clearMark(g.Name, log)
		}
	}
	if err != nil {
		return err
	}
	if dry {
		fmt.Fprintf(r.Stderr, "dry run (%s): nothing is changed\n%s", op, p.Format())
		return nil
	}
	r.logPlan(p, log)
	if act == cleanup {
		if err := apply.Cleanup(k, p.Steps); err != nil {
			return err
		}
		if len(p.Steps) > 0 {
			log.Infof("%s: cleaned up %d leftover entries/ports", op, len(p.Steps))
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
		r.markPending(g, log)
	}
	for _, s := range p.Steps {
		log.Infof("%s: %s", op, s)
	}
	if len(p.Steps) == 0 {
		log.Debugf("%s: nothing to change", op)
	}
	return nil
}

// countRun adds the run to the counts in the run directory, for the
// metrics. The caller holds the lock. A count that cannot be written is
// logged and changes nothing about the run.
func (r *Runner) countRun(op string, failed bool, log *logrus.Entry) {
	if r.RunDir == "" {
		return
	}
	if err := r.RunDir.CountHookRun(op, failed); err != nil {
		log.Warnf("%s: counting the run: %v", op, err)
	}
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
