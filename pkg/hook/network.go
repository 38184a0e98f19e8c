package hook

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// errNetworkInput marks errors caused by the network hook's XML.
var errNetworkInput = errors.New("bad network XML")

// RunNetwork runs the network hook and returns the exit code.
func (r *Runner) RunNetwork(args []string) int {
	return r.dispatch(args, networkProgram, r.networkHook)
}

// networkHook handles one libvirt network event. An operation the table
// ignores returns before the configuration is read or the log opened. A
// run that fails is counted, as operation network-OP.
func (r *Runner) networkHook(network, op, subop, _ string, dry bool) int {
	if !events.Network[[2]string{op, subop}] {
		return ExitOK
	}
	code, failed := r.networkRun(network, op, subop, dry)
	if failed {
		r.countLocked("network-"+op, true, dry)
	}
	return code
}

func (r *Runner) networkRun(network, op, subop string, dry bool) (code int, failed bool) {
	cfg, cfgErr, err := r.configure()
	if err != nil {
		fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, err)
		return ExitOK, true
	}
	log := r.log.WithField("network", network)
	if cfgErr != nil {
		// Fail the network start on a broken configuration: guests on it
		// would fail to start anyway, and this says why earlier.
		fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, cfgErr)
		return ExitConfig, true
	}
	if err := r.networkEvent(cfg, network, op, dry, log); err != nil {
		if errors.Is(err, errNetworkInput) {
			fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, err)
			return ExitInput, true
		}
		// Bridge policy is applied again at every guest start; a network
		// that cannot get it yet still starts.
		log.Errorf("%s %s: %v", op, subop, err)
		return ExitOK, true
	}
	return ExitOK, false
}

func (r *Runner) networkEvent(cfg *config.Config, network, op string, dry bool, log *logrus.Entry) error {
	if !cfg.Present || cfg.Empty() {
		return nil
	}
	data, err := guest.ReadInput(r.Stdin)
	if errors.Is(err, guest.ErrInput) {
		return fmt.Errorf("%w: standard input is larger than %d MiB", errNetworkInput, guest.MaxInput>>20)
	}
	if err != nil {
		return err
	}
	n, err := libvirt.ParseNetwork(data)
	if err != nil {
		return fmt.Errorf("%w: %v", errNetworkInput, err)
	}
	if !cfg.ManagesNetwork(n.Name) && !cfg.ManagesBridge(n.Bridge) {
		log.Debugf("%s: network %s (bridge %s) is not managed", op, n.Name, n.Bridge)
		return nil
	}
	if n.MacTableLibvirt {
		log.Infof("network %s has macTableManager='libvirt': libvirt manages its NICs, fdbhook leaves them alone", n.Name)
		return nil
	}
	if n.Bridge == "" || cfg.Policy(n.Bridge).VlanFiltering != config.Enable {
		return nil
	}
	return r.bridgePolicy(cfg, n.Bridge, op, dry, log)
}

// bridgePolicy applies plan.BridgePolicy to a managed network's bridge.
func (r *Runner) bridgePolicy(cfg *config.Config, bridge, op string, dry bool, log *logrus.Entry) error {
	k, err := r.OpenKernel()
	if err != nil {
		return err
	}
	defer k.Close()
	br, err := k.Link(bridge)
	if err != nil {
		return err
	}
	switch {
	case br == nil:
		log.Debugf("%s: bridge %s does not exist yet", op, bridge)
		return nil
	case br.Type != "bridge":
		return fmt.Errorf("%s is %s, not a bridge", bridge, br.Describe())
	}
	if !dry {
		// Planned under the lock: a guest starting meanwhile must not add
		// an entry the plan has not seen.
		unlock, err := r.lock()
		if err != nil {
			return err
		}
		defer unlock()
	}
	steps, warning, _, err := plan.BridgePolicy(cfg, PlanView{Reader: k, Files: libvirt.New(r.Libvirt)}, br)
	if err != nil {
		return err
	}
	if warning != "" {
		log.Warn(warning)
	}
	if len(steps) == 0 {
		return nil
	}
	if dry {
		fmt.Fprintf(r.Stderr, "dry run (%s): nothing is changed\n", op)
		for _, s := range steps {
			fmt.Fprintf(r.Stderr, "  do     %s\n", s)
		}
		return nil
	}
	if err := apply.Apply(k, steps); err != nil {
		return err
	}
	for _, s := range steps {
		log.Infof("%s: %s", op, s)
	}
	return nil
}

const networkUsage = `Usage:
  %[1]s NETWORK OPERATION SUB-OPERATION EXTRA   (as libvirt calls it; <hookData> on stdin)
  %[1]s --dry-run NETWORK OPERATION SUB-OPERATION EXTRA
  %[1]s --help | --version

fdbhook's libvirt network hook (/etc/libvirt/hooks/network.d/fdbhook). When a
network listed in "networks" (or whose bridge is listed in "bridges") starts,
it applies the bridge's policy, e.g. [bridge.NAME] vlan_filtering = "enable".
Per-guest work (port flags, static FDB entries) is done by qemu-hook, which
knows the guest's tap. A network with <bridge macTableManager='libvirt'/> is
left to libvirt. Other operations change nothing and exit 0.

Environment and exit codes: as for qemu-hook (see 'qemu-hook --help'). The admin
commands are the fdbhook command: see 'fdbhook --help'.
`
