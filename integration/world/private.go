package world

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
)

// The private index: the same index served a second time, on the next
// port (127.0.0.1:3142 by default), behind HTTP basic auth, so that builds
// from a private index are tested for real. It accepts the user and
// password of its credentials file, or any user with the token as
// password (the __token__ convention of PyPI and most private indexes),
// or the token as a bearer token; anything else gets 401.

// PrivateCredentials are the private index's credentials.
type PrivateCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Token    string `json:"token"`
}

// privateAddr is the private index's address: the index's port plus one.
func (l layout) privateIndex() string {
	host, port, err := net.SplitHostPort(l.index)
	if err != nil {
		return l.index
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return l.index
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

func (l layout) privateCredentialsFile() string { return l.path("index", "private-credentials.json") }

// privateCredentials reads the private index's credentials, making them
// (random) the first time.
func (l layout) privateCredentials() (PrivateCredentials, error) {
	f := l.privateCredentialsFile()
	var c PrivateCredentials
	if b, err := os.ReadFile(f); err == nil {
		if err := json.Unmarshal(b, &c); err == nil && c.Password != "" && c.Token != "" {
			return c, nil
		}
	}
	c = PrivateCredentials{Username: "ktrdr-ci", Password: randomHex(16), Token: "ktrdr-tok-" + randomHex(20)}
	b, _ := json.Marshal(c)
	if err := os.MkdirAll(l.path("index"), 0o755); err != nil {
		return c, err
	}
	if err := writeFileAtomic(f, b, 0o600); err != nil {
		return c, fmt.Errorf("writing the private index's credentials: %w", err)
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PrivateIndex returns the URL of the private index's default index and
// its credentials.
func (w *World) PrivateIndex() (string, PrivateCredentials, error) {
	c, err := w.layout.privateCredentials()
	return "http://" + w.layout.privateIndex() + "/simple", c, err
}

// requireAuth wraps h with the private index's check.
func requireAuth(c PrivateCredentials, h http.Handler) http.Handler {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		bearer := r.Header.Get("Authorization")
		if (ok && ((eq(user, c.Username) && eq(pass, c.Password)) || eq(pass, c.Token))) || eq(bearer, "Bearer "+c.Token) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="ktrdr-world private index"`)
		http.Error(w, "401 Unauthorized: the private index needs credentials", http.StatusUnauthorized)
	})
}

// privateHealthy checks the private index refuses a request without
// credentials and answers one with them.
func privateHealthy(ctx context.Context, l layout) error {
	c, err := l.privateCredentials()
	if err != nil {
		return err
	}
	u := "http://" + l.privateIndex() + "/simple/"
	for _, auth := range []bool{false, true} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		want := http.StatusUnauthorized
		if auth {
			req.SetBasicAuth(c.Username, c.Password)
			want = http.StatusOK
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("the private index: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("the private index at %s answered %s (credentials given: %v), expected %d", u, resp.Status, auth, want)
		}
	}
	return nil
}
