package build

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/filesync"
	"github.com/tonistiigi/fsutil"
)

// sharedSession is one BuildKit session for every registry build of a run on one
// daemon: the folders of every plan's staged inputs and the registry credentials are
// served through it, instead of a session opened and torn down for each profile. It is
// started early (Daemon.Start), so that it connects while the profiles are planned.
type sharedSession struct {
	once sync.Once
	err  error
	s    *session.Session
	stop context.CancelFunc
	done chan struct{}
	dirs dirSource
}

// dirSource is the session's folders by local name; names are content-derived (see
// NewLayer), so two plans that name one folder hold the same bytes there.
type dirSource struct{ m sync.Map }

func (d *dirSource) LookupDir(name string) (fsutil.FS, bool) {
	v, ok := d.m.Load(name)
	if !ok {
		return nil, false
	}
	return v.(fsutil.FS), true
}

// start opens the session on the daemon; it runs until close.
func (ss *sharedSession) start(c interface{ Dialer() session.Dialer }) error {
	ss.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := session.NewSession(ctx, "wso2img")
		if err != nil {
			cancel()
			ss.err = fmt.Errorf("opening a BuildKit session: %w", err)
			return
		}
		s.Allow(filesync.NewFSSyncProvider(&ss.dirs))
		s.Allow(authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: authprovider.LoadAuthConfig(loadDockerConfig()),
		}))
		ss.s, ss.stop, ss.done = s, cancel, make(chan struct{})
		go func() {
			defer close(ss.done)
			_ = s.Run(ctx, c.Dialer())
		}()
	})
	return ss.err
}

// add serves folders through the session under their local names.
func (ss *sharedSession) add(mounts map[string]fsutil.FS) {
	for name, fs := range mounts {
		ss.dirs.m.Store(name, fs)
	}
}

// close ends the session once every build on it has returned.
func (ss *sharedSession) close() {
	if ss.s == nil {
		return
	}
	_ = ss.s.Close()
	ss.stop()
	<-ss.done
}
