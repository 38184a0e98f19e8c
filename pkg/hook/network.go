package hook

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/manage"
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
	if !events.Acts(events.Network, op, subop) {
		return host.ExitOK
	}
	code, failed := r.networkRun(network, op, subop, dry)
	if failed {
		manage.CountRun(&r.Env, "network-"+op, true, dry, r.logFor("network-"+op))
	}
	return code
}

func (r *Runner) networkRun(network, op, subop string, dry bool) (code int, failed bool) {
	cfg, cfgErr, err := r.configure()
	if err != nil {
		fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, err)
		return host.ExitOK, true
	}
	log := r.log.WithField("network", network)
	if cfgErr != nil {
		// Fail the network start on a broken configuration: guests on it
		// would fail to start anyway, and this says why earlier.
		fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, cfgErr)
		return host.ExitConfig, true
	}
	if err := r.networkEvent(cfg, network, op, dry, log); err != nil {
		if errors.Is(err, errNetworkInput) {
			fmt.Fprintf(r.Stderr, "fdbhook: network %s: %v\n", network, err)
			return host.ExitInput, true
		}
		// Bridge policy is applied again at every guest start; a network
		// that cannot get it yet still starts.
		log.Errorf("%s %s: %v", op, subop, err)
		return host.ExitOK, true
	}
	return host.ExitOK, false
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
	return manage.BridgePolicy(&r.Env, cfg, n.Bridge, op, dry, log)
}
