// Package winevt reads Windows event logs through the Windows Event Log
// API (wevtapi.dll) as rendered event XML (Windows only; the package is
// empty elsewhere). Parsing the XML is the caller's: it is outside bytes.
package winevt
