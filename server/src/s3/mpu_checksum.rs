//! Object checksums of multipart uploads, derived from the part checksums as
//! S3 does: `COMPOSITE` is the checksum of the concatenated raw part
//! checksums, shown with a `-N` suffix; `FULL_OBJECT` (CRCs only) is the CRC
//! of the whole object, combined from the part CRCs and sizes without
//! reading the data.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use s3s::dto;
use s3s::{S3Error, s3_error};
use tessera_raft::model::{Checksum, ChecksumType, MultipartUpload, PartData};
use tessera_storage::ChecksumAlgorithm;

use super::errors;

/// The checksum an upload promises its object: algorithm and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UploadChecksum {
    pub(crate) algorithm: ChecksumAlgorithm,
    pub(crate) kind: ChecksumType,
}

/// The S3 name of a checksum type.
pub(crate) fn type_name(kind: ChecksumType) -> dto::ChecksumType {
    dto::ChecksumType::from_static(match kind {
        ChecksumType::Composite => dto::ChecksumType::COMPOSITE,
        ChecksumType::FullObject => dto::ChecksumType::FULL_OBJECT,
    })
}

fn parse_type(kind: &dto::ChecksumType) -> Result<ChecksumType, S3Error> {
    let k = kind.as_str();
    if k.eq_ignore_ascii_case(dto::ChecksumType::COMPOSITE) {
        Ok(ChecksumType::Composite)
    } else if k.eq_ignore_ascii_case(dto::ChecksumType::FULL_OBJECT) {
        Ok(ChecksumType::FullObject)
    } else {
        Err(s3_error!(
            InvalidRequest,
            "Value for x-amz-checksum-type header is invalid."
        ))
    }
}

impl UploadChecksum {
    /// The checksum a `CreateMultipartUpload` asks for
    /// (`x-amz-checksum-algorithm`, `x-amz-checksum-type`), validated as S3
    /// does. Without a type, CRC64NVME is full-object and every other
    /// algorithm composite.
    pub(crate) fn requested(
        algorithm: Option<&dto::ChecksumAlgorithm>,
        kind: Option<&dto::ChecksumType>,
    ) -> Result<Option<Self>, S3Error> {
        let Some(algorithm) = algorithm else {
            return match kind {
                None => Ok(None),
                Some(_) => Err(s3_error!(
                    InvalidRequest,
                    "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
                )),
            };
        };
        let algorithm = ChecksumAlgorithm::from_name(algorithm.as_str()).ok_or_else(|| {
            s3_error!(
                InvalidRequest,
                "unsupported checksum algorithm {}",
                algorithm.as_str()
            )
        })?;
        let kind = match kind {
            Some(k) => parse_type(k)?,
            None if algorithm == ChecksumAlgorithm::Crc64Nvme => ChecksumType::FullObject,
            None => ChecksumType::Composite,
        };
        let allowed = match kind {
            ChecksumType::Composite => algorithm != ChecksumAlgorithm::Crc64Nvme,
            ChecksumType::FullObject => algorithm.is_crc(),
        };
        if !allowed {
            return Err(s3_error!(
                InvalidRequest,
                "The {} checksum type cannot be used with the {} checksum algorithm.",
                type_name(kind).as_str(),
                algorithm.name().to_ascii_lowercase()
            ));
        }
        Ok(Some(Self { algorithm, kind }))
    }

    /// The checksum an upload was created with.
    pub(crate) fn of(upload: &MultipartUpload) -> Result<Option<Self>, S3Error> {
        let Some(name) = &upload.checksum_algorithm else {
            return Ok(None);
        };
        let algorithm = ChecksumAlgorithm::from_name(name)
            .ok_or_else(|| errors::internal(format!("upload has checksum algorithm {name}")))?;
        let kind = upload
            .checksum_type
            .ok_or_else(|| errors::internal("upload has a checksum algorithm but no type"))?;
        Ok(Some(Self { algorithm, kind }))
    }

    /// Refuses an `UploadPart` whose checksum is of another algorithm than
    /// the upload's: the one it names (`x-amz-sdk-checksum-algorithm`, or
    /// its trailer) or any `x-amz-checksum-*` header it sends.
    pub(crate) fn check_part_request(
        &self,
        named: Option<&dto::ChecksumAlgorithm>,
        declared: &dto::Checksum,
    ) -> Result<(), S3Error> {
        let named = named.map(|a| a.as_str().to_owned());
        let sent = claims(declared)
            .into_iter()
            .map(|(a, _)| a.name().to_owned());
        match named
            .into_iter()
            .chain(sent)
            .find(|a| !a.eq_ignore_ascii_case(self.algorithm.name()))
        {
            None => Ok(()),
            Some(other) => Err(s3_error!(
                InvalidRequest,
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                self.algorithm.name().to_ascii_lowercase(),
                other.to_ascii_lowercase()
            )),
        }
    }

    /// The raw digest a part carries for this algorithm.
    fn part_digest(&self, part: &PartData) -> Result<Vec<u8>, S3Error> {
        part.checksums
            .iter()
            .find(|c| c.algorithm == self.algorithm.name())
            .and_then(|c| BASE64.decode(&c.value).ok())
            .filter(|d| d.len() == self.algorithm.digest_len())
            .ok_or_else(|| {
                s3_error!(
                    InvalidPart,
                    "part {} has no {} checksum",
                    part.number,
                    self.algorithm.name()
                )
            })
    }

    /// The object checksum of `parts`, in object order.
    pub(crate) fn object_checksum(&self, parts: &[&PartData]) -> Result<Checksum, S3Error> {
        let value = match self.kind {
            ChecksumType::Composite => {
                let mut concatenated =
                    Vec::with_capacity(parts.len() * self.algorithm.digest_len());
                for p in parts {
                    concatenated.extend(self.part_digest(p)?);
                }
                format!(
                    "{}-{}",
                    BASE64.encode(self.algorithm.digest(&concatenated)),
                    parts.len()
                )
            }
            ChecksumType::FullObject => {
                let mut whole = self.algorithm.digest(b"");
                for p in parts {
                    whole = self
                        .algorithm
                        .combine(&whole, &self.part_digest(p)?, p.size)
                        .ok_or_else(|| {
                            errors::internal(format!(
                                "{} digests cannot be combined",
                                self.algorithm.name()
                            ))
                        })?;
                }
                BASE64.encode(whole)
            }
        };
        Ok(Checksum {
            algorithm: self.algorithm.name().to_owned(),
            value,
        })
    }

    /// Checks a part checksum the client listed in `CompleteMultipartUpload`
    /// against the stored part. A composite checksum needs every part's.
    pub(crate) fn check_part(
        &self,
        part: &PartData,
        listed: &dto::Checksum,
    ) -> Result<(), S3Error> {
        match claims(listed)
            .into_iter()
            .find(|(a, _)| *a == self.algorithm)
        {
            Some((_, value)) => {
                if BASE64.decode(value.trim()).ok() == Some(self.part_digest(part)?) {
                    Ok(())
                } else {
                    Err(s3_error!(
                        InvalidPart,
                        "the {} checksum of part {} does not match the uploaded part",
                        self.algorithm.name(),
                        part.number
                    ))
                }
            }
            None if self.kind == ChecksumType::Composite => Err(s3_error!(
                InvalidRequest,
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                self.algorithm.name().to_ascii_lowercase(),
                part.number
            )),
            None => Ok(()),
        }
    }

    /// Checks the object checksum and type the client declared in
    /// `CompleteMultipartUpload` against the computed `checksum`. A
    /// composite value may be sent with or without its `-N` suffix.
    pub(crate) fn check_object(
        &self,
        checksum: &Checksum,
        declared: &dto::Checksum,
    ) -> Result<(), S3Error> {
        if let Some(kind) = &declared.checksum_type
            && parse_type(kind)? != self.kind
        {
            return Err(s3_error!(
                InvalidRequest,
                "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                type_name(self.kind).as_str()
            ));
        }
        for (algorithm, value) in claims(declared) {
            if algorithm != self.algorithm {
                return Err(s3_error!(
                    InvalidRequest,
                    "The upload was created using the {} checksum algorithm; a {} checksum was sent.",
                    self.algorithm.name().to_ascii_lowercase(),
                    algorithm.name().to_ascii_lowercase()
                ));
            }
            let value = value.trim();
            let matches = match checksum.value.split_once('-') {
                Some((digest, _)) => value == checksum.value || value == digest,
                None => value == checksum.value,
            };
            if !matches {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name().to_ascii_lowercase()
                ));
            }
        }
        Ok(())
    }
}

/// A checksum declared for an upload created without one.
pub(crate) fn refuse_undeclared(declared: &dto::Checksum) -> Result<(), S3Error> {
    if claims(declared).is_empty() && declared.checksum_type.is_none() {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidRequest,
            "The upload was created without a checksum algorithm, so the complete request cannot carry a checksum."
        ))
    }
}

/// The checksum values present in a set of S3 checksum fields.
fn claims(sums: &dto::Checksum) -> Vec<(ChecksumAlgorithm, &str)> {
    [
        (ChecksumAlgorithm::Crc32, &sums.checksum_crc32),
        (ChecksumAlgorithm::Crc32c, &sums.checksum_crc32c),
        (ChecksumAlgorithm::Crc64Nvme, &sums.checksum_crc64nvme),
        (ChecksumAlgorithm::Sha1, &sums.checksum_sha1),
        (ChecksumAlgorithm::Sha256, &sums.checksum_sha256),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.as_deref().map(|v| (a, v)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_raft::model::Segment;

    fn part(number: u32, data: &[u8], algorithm: ChecksumAlgorithm) -> PartData {
        PartData {
            number,
            size: data.len() as u64,
            etag: String::new(),
            checksums: vec![Checksum {
                algorithm: algorithm.name().to_owned(),
                value: BASE64.encode(algorithm.digest(data)),
            }],
            segment: Segment {
                object_id: [0; 16],
                part: number,
                size: data.len() as u64,
                data_shards: 1,
                parity_shards: 0,
                block_size: 1,
                placement: Vec::new(),
                missing: Vec::new(),
            },
            uploaded: 0,
        }
    }

    fn requested(alg: &str, kind: Option<&str>) -> Result<Option<UploadChecksum>, S3Error> {
        UploadChecksum::requested(
            Some(&dto::ChecksumAlgorithm::from(alg.to_owned())),
            kind.map(|k| dto::ChecksumType::from(k.to_owned())).as_ref(),
        )
    }

    #[test]
    fn types_default_and_combine_as_s3_allows() {
        let kind = |alg, k| requested(alg, k).unwrap().unwrap().kind;
        assert_eq!(kind("CRC32", None), ChecksumType::Composite);
        assert_eq!(kind("SHA256", None), ChecksumType::Composite);
        assert_eq!(kind("CRC64NVME", None), ChecksumType::FullObject);
        assert_eq!(
            kind("CRC32C", Some("FULL_OBJECT")),
            ChecksumType::FullObject
        );
        assert!(requested("CRC64NVME", Some("COMPOSITE")).is_err());
        assert!(requested("SHA1", Some("FULL_OBJECT")).is_err());
        assert!(requested("CRC32", Some("SOMETIMES")).is_err());
        assert!(requested("MD5", None).is_err());
        let type_alone = dto::ChecksumType::from_static(dto::ChecksumType::COMPOSITE);
        assert!(UploadChecksum::requested(None, Some(&type_alone)).is_err());
        assert_eq!(UploadChecksum::requested(None, None).unwrap(), None);
    }

    #[test]
    fn object_checksums_of_parts() {
        let (a, b) = (vec![7u8; 1000], b"tail".to_vec());
        let whole = [a.as_slice(), b.as_slice()].concat();
        for algorithm in ChecksumAlgorithm::ALL {
            let parts = [part(1, &a, algorithm), part(2, &b, algorithm)];
            let refs: Vec<&PartData> = parts.iter().collect();
            let composite = UploadChecksum {
                algorithm,
                kind: ChecksumType::Composite,
            };
            let mut raw = algorithm.digest(&a);
            raw.extend(algorithm.digest(&b));
            assert_eq!(
                composite.object_checksum(&refs).unwrap().value,
                format!("{}-2", BASE64.encode(algorithm.digest(&raw)))
            );
            if algorithm.is_crc() {
                let full = UploadChecksum {
                    algorithm,
                    kind: ChecksumType::FullObject,
                };
                assert_eq!(
                    full.object_checksum(&refs).unwrap().value,
                    BASE64.encode(algorithm.digest(&whole))
                );
            }
        }
        let crc = UploadChecksum {
            algorithm: ChecksumAlgorithm::Crc32,
            kind: ChecksumType::FullObject,
        };
        let sha_part = part(1, &a, ChecksumAlgorithm::Sha256);
        assert!(crc.object_checksum(&[&sha_part]).is_err());
    }

    #[test]
    fn declared_object_checksums() {
        let sum = Checksum {
            algorithm: "CRC32".into(),
            value: "AAAAAA==-3".into(),
        };
        let crc = UploadChecksum {
            algorithm: ChecksumAlgorithm::Crc32,
            kind: ChecksumType::Composite,
        };
        let declared = |v: &str| dto::Checksum {
            checksum_crc32: Some(v.to_owned()),
            ..Default::default()
        };
        assert!(crc.check_object(&sum, &declared("AAAAAA==-3")).is_ok());
        assert!(crc.check_object(&sum, &declared("AAAAAA==")).is_ok());
        let wrong = crc.check_object(&sum, &declared("AAAAAQ==")).unwrap_err();
        assert_eq!(wrong.code(), &s3s::S3ErrorCode::BadDigest);
        let other = dto::Checksum {
            checksum_sha256: Some("x".into()),
            ..Default::default()
        };
        let err = crc.check_object(&sum, &other).unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::InvalidRequest);
        let mode = dto::Checksum {
            checksum_type: Some(type_name(ChecksumType::FullObject)),
            ..Default::default()
        };
        assert!(crc.check_object(&sum, &mode).is_err());
        let sha = dto::ChecksumAlgorithm::from_static(dto::ChecksumAlgorithm::SHA256);
        let crc_name = dto::ChecksumAlgorithm::from_static(dto::ChecksumAlgorithm::CRC32);
        assert!(
            crc.check_part_request(Some(&crc_name), &declared("x"))
                .is_ok()
        );
        assert!(
            crc.check_part_request(None, &dto::Checksum::default())
                .is_ok()
        );
        assert!(
            crc.check_part_request(Some(&sha), &dto::Checksum::default())
                .is_err()
        );
        assert!(crc.check_part_request(None, &other).is_err());
        assert!(refuse_undeclared(&dto::Checksum::default()).is_ok());
        assert!(refuse_undeclared(&declared("AAAAAA==")).is_err());
    }
}
