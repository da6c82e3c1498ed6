// Package uitest signs test clients in to the web UI as a browser does:
// it fetches the sign-in form first and posts it back with the form's
// CSRF token and cookie (ui's loginCookie).
package uitest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// PostLogin posts form (username, password, next) to base's /ui/login
// with the token of the sign-in form it fetched first, and returns the
// answer to the POST. The client needs no cookie jar; with one, the jar
// keeps the session.
func PostLogin(c *http.Client, base string, form url.Values) (*http.Response, error) {
	resp, err := c.Get(base + "/ui/login")
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	m := csrfField.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("sign-in form: %s, no csrf field", resp.Status)
	}
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", string(m[1]))
	req, err := http.NewRequest(http.MethodPost, base+"/ui/login", strings.NewReader(f.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Jar == nil {
		for _, ck := range resp.Cookies() {
			req.AddCookie(ck)
		}
	}
	return c.Do(req)
}
