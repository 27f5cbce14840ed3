package llb

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/moby/buildkit/client/llb"
)

// User is the unprivileged account an application runs as. UID and GID are
// fixed so that files made in the builder stage, as that user, belong to the
// same account in the runtime image.
type User struct {
	Name  string
	Group string
	UID   int
	GID   int
	// Home is the home directory (KTRDR: the app dir); it is not created.
	Home string
	// Shell is the login shell (/sbin/nologin for a service account).
	Shell string
}

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Validate checks the names (as useradd accepts them, without a trailing $),
// the ids (1-65534; root is refused) and the paths.
func (u User) Validate() error {
	if !userName.MatchString(u.Name) {
		return fmt.Errorf("user name %q: expected 1-32 characters of a-z, 0-9, _ and -, starting with a letter or _", u.Name)
	}
	if !userName.MatchString(u.Group) {
		return fmt.Errorf("group name %q: expected 1-32 characters of a-z, 0-9, _ and -, starting with a letter or _", u.Group)
	}
	if u.UID <= 0 || u.UID > 65534 {
		return fmt.Errorf("user id %d: expected 1 to 65534 (the app must not run as root)", u.UID)
	}
	if u.GID <= 0 || u.GID > 65534 {
		return fmt.Errorf("group id %d: expected 1 to 65534", u.GID)
	}
	if !isAbs(u.Home) || !isAbs(u.Shell) {
		return fmt.Errorf("user %s: home %q and shell %q must be absolute paths", u.Name, u.Home, u.Shell)
	}
	return nil
}

// IDs is "uid:gid", the form exec ops and image configs take.
func (u User) IDs() string { return strconv.Itoa(u.UID) + ":" + strconv.Itoa(u.GID) }

// Owner is the chown option that gives a file to the user.
func (u User) Owner() llb.ChownOption { return llb.WithUIDGID(u.UID, u.GID) }

func (u User) chown() *llb.ChownOpt {
	return &llb.ChownOpt{User: &llb.UserOpt{UID: u.UID}, Group: &llb.UserOpt{UID: u.GID}}
}

// AddUser creates the group and the system user in st, with their fixed
// ids, no home directory and no lastlog entry. shadow-utils take the
// password-change date from SOURCE_DATE_EPOCH when the step has it, so pass
// Build.StepEnv for a reproducible /etc/shadow.
func AddUser(st llb.State, u User, b Build) llb.State {
	cmd := fmt.Sprintf("groupadd --system --gid %d %s && useradd --system --no-log-init --no-create-home --uid %d --gid %d --home-dir %s --shell %s %s",
		u.GID, u.Group, u.UID, u.GID, ShellQuote(u.Home), ShellQuote(u.Shell), u.Name)
	opts := append(b.stepEnv(), shell(cmd), llb.WithCustomNamef("[runtime] add user %s (%s) and group %s (%d)", u.Name, u.IDs(), u.Group, u.GID))
	return st.Run(opts...).Root()
}
