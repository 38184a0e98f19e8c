module github.com/antchfx/xmlquery

go 1.14

require (
	github.com/antchfx/xpath v1.3.9
	github.com/golang/groupcache v0.0.0-20210331224755-41bb18bfe9da
)
