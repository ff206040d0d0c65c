package profiles

// ReservedLabelPrefix marks the labels wso2img writes itself; a profile cannot set them.
const ReservedLabelPrefix = "io.wso2img."

// Labels wso2img writes on every image it builds, named here once for the packages that
// write (build), sign (sign: the signature's annotations carry the same names) and read
// them (verify, watch). The OCI ones describe the built image; the io.wso2img ones say
// what it was built from.
const (
	LabelBaseName      = "org.opencontainers.image.base.name"
	LabelBaseDigest    = "org.opencontainers.image.base.digest"
	LabelCreated       = "org.opencontainers.image.created"
	LabelVersion       = "org.opencontainers.image.version"
	LabelSource        = "org.opencontainers.image.source"
	LabelRevision      = "org.opencontainers.image.revision"
	LabelProduct       = ReservedLabelPrefix + "product"
	LabelProductVer    = ReservedLabelPrefix + "product-version"
	LabelWUM           = ReservedLabelPrefix + "wum-timestamp"
	LabelLevel         = ReservedLabelPrefix + "update-level"
	LabelProfile       = ReservedLabelPrefix + "profile"
	LabelProfileDigest = ReservedLabelPrefix + "profile-digest"
	LabelRebuildID     = ReservedLabelPrefix + "rebuild-id"
)

// computedLabels are OCI labels wso2img writes from the build itself, so a profile
// setting them would lie about the image.
var computedLabels = []string{LabelBaseName, LabelBaseDigest, LabelCreated, LabelVersion}
