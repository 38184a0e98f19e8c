module github.com/fdbhook/fdbhook/bench

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/fdbhook/fdbhook v0.0.0
	github.com/sirupsen/logrus v1.10.2
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	golang.org/x/sys v0.41.0
)

require (
	github.com/antchfx/xmlquery v1.5.2 // indirect
	github.com/antchfx/xpath v1.3.9 // indirect
	github.com/golang/groupcache v0.0.0-20210331224755-41bb18bfe9da // indirect
	golang.org/x/net v0.49.0 // indirect
	golang.org/x/text v0.34.0 // indirect
)

// The product this module measures: the working tree it sits in.
replace github.com/fdbhook/fdbhook => ../
