// Package setupdi lists Windows device nodes through SetupAPI (Windows
// only; the package is empty elsewhere).
package setupdi
