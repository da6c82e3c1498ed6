//go:build windows

package posture

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/bonafide-sec/bonafide/agent/internal/winevt"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winProfileList holds one subkey per user profile, named by SID, with
// the profile folder in ProfileImagePath. Windows creates a profile at an
// account's first interactive sign-in.
const winProfileList = `SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList`

// maxMsiEvents bounds the MsiInstaller events read in one scan.
const maxMsiEvents = 5000

var (
	netapi32                    = windows.NewLazySystemDLL("netapi32.dll")
	procNetLocalGroupGetMembers = netapi32.NewProc("NetLocalGroupGetMembers")
)

// readLive reads the profiles, the local Administrators group and the
// MSI installs of the catalog's tools (msi.go). What it could read is
// returned with the errors of what it could not.
func readLive(ctx context.Context, tools Tools) (*agentv1.Posture, error) {
	p := &agentv1.Posture{InteractiveAccounts: WinProfileAccounts(winProfiles())}
	computer, _ := windows.ComputerName()
	var errs []error
	if members, err := winAdminMembers(); err != nil {
		errs = append(errs, err)
	} else {
		p.LocalAdmins, p.AdminsRead = WinAdmins(members, computer), true
	}
	if len(tools.Products) > 0 {
		events, err := winMsiEvents(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		p.ToolInstalls = MsiInstalls(events, tools.Products, func(sid string) string { return winLookupSID(sid, computer) })
	}
	return p, errors.Join(errs...)
}

// winMsiEvents reads the Application log's MsiInstaller install events,
// newest first, at most maxMsiEvents.
func winMsiEvents(ctx context.Context) ([][]byte, error) {
	if err := winevt.Find(); err != nil {
		return nil, fmt.Errorf("posture: %w", err)
	}
	var events [][]byte
	query := fmt.Sprintf("*[System[Provider[@Name='MsiInstaller'] and EventID=%d]]", msiEventInstalled)
	err := winevt.Each(ctx, "Application", query, true, maxMsiEvents, maxEventXML, func(b []byte) {
		events = append(events, b)
	})
	if err != nil {
		return events, fmt.Errorf("posture: %w", err)
	}
	return events, nil
}

// winLookupSID names the account of a SID ("" when it cannot be named).
func winLookupSID(s, computer string) string {
	sid, err := windows.StringToSid(s)
	if err != nil {
		return ""
	}
	account, domain, _, err := sid.LookupAccount("")
	if err != nil {
		return ""
	}
	if domain == "" {
		return account
	}
	return WinAccount(domain+`\`+account, computer)
}

// winProfiles reads ProfileList: SID → ProfileImagePath.
func winProfiles() map[string]string {
	profiles := map[string]string{}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, winProfileList, registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return profiles
	}
	defer k.Close()
	sids, _ := k.ReadSubKeyNames(4096)
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
	return profiles
}

// winAdminMembers lists the members of the built-in Administrators group
// (S-1-5-32-544, whose name is localised, so it is looked up by SID) with
// NetLocalGroupGetMembers at level 3 (LOCALGROUP_MEMBERS_INFO_3: one
// "DOMAIN\name" pointer each), page by page. At most maxAccounts are
// kept.
func winAdminMembers() ([]string, error) {
	sid, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return nil, fmt.Errorf("posture: Administrators SID: %w", err)
	}
	group, _, _, err := sid.LookupAccount("")
	if err != nil {
		return nil, fmt.Errorf("posture: LookupAccountSid(S-1-5-32-544): %w", err)
	}
	name, err := windows.UTF16PtrFromString(group)
	if err != nil {
		return nil, err
	}
	if err := procNetLocalGroupGetMembers.Find(); err != nil {
		return nil, fmt.Errorf("posture: %w", err)
	}
	var members []string
	var resume uintptr
	for range 64 { // pages; the list is capped below anyway
		var buf *byte
		var read, total uint32
		r, _, _ := procNetLocalGroupGetMembers.Call(0, uintptr(unsafe.Pointer(name)), 3, uintptr(unsafe.Pointer(&buf)),
			0xFFFFFFFF, // MAX_PREFERRED_LENGTH
			uintptr(unsafe.Pointer(&read)), uintptr(unsafe.Pointer(&total)), uintptr(unsafe.Pointer(&resume)))
		if buf != nil {
			for _, p := range unsafe.Slice((**uint16)(unsafe.Pointer(buf)), read) {
				if p != nil && len(members) < maxAccounts {
					members = append(members, windows.UTF16PtrToString(p))
				}
			}
			windows.NetApiBufferFree(buf)
		}
		switch errno := windows.Errno(r); {
		case r == 0:
			return members, nil
		case errors.Is(errno, windows.ERROR_MORE_DATA):
			continue
		default:
			return nil, fmt.Errorf("posture: NetLocalGroupGetMembers(%s): %w", group, errno)
		}
	}
	return members, nil
}
