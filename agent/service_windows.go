package main

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/sys/windows/svc"
)

// runAsService runs the agent under the Windows service manager, as `run
// --service` (the service's command line) asks: it connects to the service
// manager (StartServiceCtrlDispatcher) straight away, without judging first
// whether the service manager started it. kardianos/service judges that
// with x/sys's svc.IsWindowsService, which requires the parent process to
// be services.exe in session 0; Wine 8 runs services.exe in session 1, so
// under Wine that guess says "interactive", the agent never connects, and
// services.exe gives up after its pipe timeout (error 1053).
func runAsService(_ options, run func(context.Context) error) error {
	return svc.Run(serviceName, &windowsService{run: run})
}

// windowsService is the agent as a svc.Handler: running until the service
// manager asks it to stop or the agent stops by itself.
type windowsService struct {
	run func(context.Context) error
}

// serviceStopWait is how long a stop or shutdown waits for the agent to
// finish what it was doing (a delivery, a spool write).
const serviceStopWait = 20 * time.Second

func (s *windowsService) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case err := <-done:
			if err != nil {
				slog.Error("agent stopped", "err", err)
				// A service-specific exit code: the service manager
				// counts it as a failure and applies the recovery actions.
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(serviceStopWait / time.Millisecond)}
				cancel()
				select {
				case <-done:
				case <-time.After(serviceStopWait):
				}
				return false, 0
			}
		}
	}
}
