package upload

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// privateDACL grants full control to SYSTEM and Administrators only, not
// inherited from %ProgramData% (which lets every user read).
const privateDACL = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

// mkdirPrivate creates dir readable only by SYSTEM and Administrators, and
// applies that protected DACL to an existing directory too.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(privateDACL)
	if err != nil {
		return err
	}
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return err
	}
	err = windows.CreateDirectory(p, &windows.SecurityAttributes{
		Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd,
	})
	if err == nil || !errors.Is(err, windows.ERROR_ALREADY_EXISTS) && !errors.Is(err, fs.ErrExist) {
		return err
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}
