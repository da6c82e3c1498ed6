package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// installerKey is where the MSI writes its COLLECTOR, ENROLL_SECRET and
// CA_FINGERPRINT properties (installers/windows/bonafide-agent.wxs), in the
// 64-bit view of HKEY_LOCAL_MACHINE. The MSI restricts it to SYSTEM and
// Administrators (MsiLockPermissionsEx).
const installerKey = `SOFTWARE\Bonafide\Agent`

// Security descriptors (SDDL) of the configuration directory and file: full
// control for SYSTEM (SY) and Administrators (BA), nobody else, and nothing
// inherited from %ProgramData% (P), where every user may read and create.
const (
	privateDirSDDL  = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
	privateFileSDDL = "D:P(A;;FA;;;SY)(A;;FA;;;BA)"
)

func installerSource() (installerStore, func(string, []byte) error) {
	return registryStore{}, writePrivateFile
}

// registryStore reads and deletes the MSI's values in HKLM\SOFTWARE\Bonafide\Agent.
type registryStore struct{}

func registryValues(s *InstallerSettings) []struct {
	name  string
	value *string
} {
	return []struct {
		name  string
		value *string
	}{{"Collector", &s.Collector}, {"EnrollSecret", &s.EnrollSecret}, {"CAFingerprint", &s.CAFingerprint}}
}

func (registryStore) Read() (InstallerSettings, error) {
	var s InstallerSettings
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, installerKey, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf(`open HKLM\%s: %w`, installerKey, err)
	}
	defer k.Close()
	for _, v := range registryValues(&s) {
		val, _, err := k.GetStringValue(v.name)
		switch {
		case errors.Is(err, registry.ErrNotExist):
		case err != nil:
			return s, fmt.Errorf(`read HKLM\%s\%s: %w`, installerKey, v.name, err)
		default:
			*v.value = val
		}
	}
	return s, nil
}

func (registryStore) Clear() error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, installerKey, registry.QUERY_VALUE|registry.SET_VALUE|registry.WOW64_64KEY)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(`open HKLM\%s: %w`, installerKey, err)
	}
	defer k.Close()
	var s InstallerSettings
	for _, v := range registryValues(&s) {
		if err := k.DeleteValue(v.name); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf(`delete HKLM\%s\%s: %w`, installerKey, v.name, err)
		}
	}
	return nil
}

// writePrivateFile writes data to path so that only SYSTEM and
// Administrators can read it at any moment: the new content goes to a
// temporary file created with the private DACL, which then replaces path.
// The default directory, %ProgramData%\Bonafide, is made private first; a
// directory named with --config is left as it is (it could be C:\).
func writePrivateFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if strings.EqualFold(filepath.Clean(dir), filepath.Dir(DefaultPath())) {
		if err := securePrivateDir(dir); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(privateFileSDDL)
	if err != nil {
		return err
	}
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p, err := windows.UTF16PtrFromString(tmp)
	if err != nil {
		return err
	}
	// CREATE_NEW: the security descriptor applies only to a file this call
	// creates, never to one that was already there.
	h, err := windows.CreateFile(p, windows.GENERIC_WRITE, 0, &windows.SecurityAttributes{
		Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd,
	}, windows.CREATE_NEW, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	f := os.NewFile(uintptr(h), tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	to, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	if err := windows.MoveFileEx(p, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// securePrivateDir creates dir with the private DACL, or gives an existing
// dir that DACL. An existing dir must be owned by SYSTEM, Administrators or
// the account the agent runs as (the service's: SYSTEM): an ordinary user
// can create %ProgramData%\Bonafide before the agent is installed, and as
// its owner could always change its DACL back. The agent's own account
// matters where a directory the agent created is not owned by SYSTEM or
// Administrators: under Wine, whose services run as the Unix user's account
// (S-1-5-21-0-0-0-1000) and so own what they create, the service would
// otherwise refuse, at its second start, the directory it made at its first.
func securePrivateDir(dir string) error {
	sd, err := windows.SecurityDescriptorFromString(privateDirSDDL)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return err
	}
	err = windows.CreateDirectory(p, &windows.SecurityAttributes{
		Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	cur, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("owner of %s: %w", dir, err)
	}
	owner, _, err := cur.Owner()
	if err != nil {
		return fmt.Errorf("owner of %s: %w", dir, err)
	}
	if owner == nil || !owner.IsWellKnown(windows.WinLocalSystemSid) && !owner.IsWellKnown(windows.WinBuiltinAdministratorsSid) && !ownAccount(owner) {
		return fmt.Errorf("%s is owned by %v, not by SYSTEM or Administrators: not writing the configuration there (delete the directory and restart the service)", dir, owner)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	if err := windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		return fmt.Errorf("restrict %s: %w", dir, err)
	}
	return nil
}

// ownAccount reports whether sid is the user of this process's token.
func ownAccount(sid *windows.SID) bool {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	return err == nil && u.User.Sid.Equals(sid)
}
