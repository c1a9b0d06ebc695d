// Package tomcat holds seed 002's Tomcat example (vigil-fragment.yaml and scripts/) and its test.
package tomcat
