// Package config owns how tiergate reads its YAML files: strict decoding
// (unknown keys are errors), ${ENV} expansion of values, defaults, and
// validation errors that name the file, the line and the field path, e.g.
//
//	configs/edge.yaml:14: upstreams[0].backends[1].address: "10.0.0.1" has no port
//
// Each package that owns a config section declares a plain struct with yaml
// tags, documents its defaults on the fields, and implements
//
//	SetDefaults()   // optional: fill zero values with defaults
//	Validate() error // report problems as *FieldError (see Errorf, In, At)
//
// Parents call their children's SetDefaults/Validate and prefix the child's
// paths with In or At, so a leaf reports "address" and the file loader turns
// it into "upstreams[0].backends[1].address" at the right line.
package config
