//go:build windows

package posture

import (
	"context"

	"golang.org/x/sys/windows/registry"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winProfileList holds one subkey per user profile, named by SID, with
// the profile folder in ProfileImagePath. Windows creates a profile at an
// account's first interactive sign-in.
const winProfileList = `SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList`

// readLive reads the profiles. Local administrators are not read on
// Windows yet (AdminsRead stays false), nor who installed a tool.
func readLive(_ context.Context, _ map[string]string) (*agentv1.Posture, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, winProfileList, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return &agentv1.Posture{}, nil
	}
	defer k.Close()
	sids, _ := k.ReadSubKeyNames(4096)
	profiles := map[string]string{}
	for _, sid := range sids {
		sk, err := registry.OpenKey(k, sid, registry.QUERY_VALUE)
		if err != nil {
			continue
		}
		if p, _, err := sk.GetStringValue("ProfileImagePath"); err == nil {
			profiles[sid] = p
		}
		sk.Close()
	}
	return &agentv1.Posture{InteractiveAccounts: WinProfileAccounts(profiles)}, nil
}
