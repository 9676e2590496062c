//! Which style of a pack, or which mix of a multi-style pack's styles, a front end asks for:
//! `painters`, `painters:vangogh`, `painters:vangogh=0.7,rembrandt=0.3`.

use super::{Manifest, PackError};

/// A pack and, for a multi-style pack, the shares of its styles.
#[derive(Debug, Clone, PartialEq)]
pub struct StyleRef {
    /// The pack: an id or a folder.
    pub pack: String,
    /// `(style id, share)` pairs; empty means the pack's first style.
    pub mix: Vec<(String, f32)>,
}

impl StyleRef {
    /// Reads `PACK`, `PACK:STYLE` or `PACK:STYLE=SHARE,STYLE=SHARE…`. A share left out is 1.
    /// Text whose part after the last `:` is not a list of style ids is a pack (a path may hold
    /// a `:`).
    pub fn parse(text: &str) -> Result<Self, PackError> {
        let whole = || Self {
            pack: text.to_string(),
            mix: Vec::new(),
        };
        let Some((pack, list)) = text.rsplit_once(':') else {
            return Ok(whole());
        };
        let mut mix = Vec::new();
        for item in list.split(',') {
            let (id, share) = match item.split_once('=') {
                Some((id, share)) => (id.trim(), Some(share.trim())),
                None => (item.trim(), None),
            };
            if !super::valid_id(id) {
                return Ok(whole());
            }
            let share = match share {
                None => 1.0,
                Some(s) => match s.parse::<f32>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    _ => {
                        return Err(PackError::BadMix(format!(
                            "`{s}` is not a share of style `{id}` (a number, 0 or more)"
                        )));
                    }
                },
            };
            mix.push((id.to_string(), share));
        }
        Ok(Self {
            pack: pack.to_string(),
            mix,
        })
    }

    /// Each of the pack's styles' share, summing to 1, in the order of its network's style
    /// table. A one-style pack takes no mix.
    pub fn weights(&self, manifest: &Manifest) -> Result<Vec<f32>, PackError> {
        let styles = &manifest.styles;
        if styles.is_empty() {
            return match self.mix.as_slice() {
                [] => Ok(vec![1.0]),
                _ => Err(PackError::BadMix(format!(
                    "`{}` holds one style; it has no styles to choose or mix",
                    manifest.id
                ))),
            };
        }
        let mut weights = vec![0.0f32; styles.len()];
        if self.mix.is_empty() {
            weights[0] = 1.0;
            return Ok(weights);
        }
        for (id, share) in &self.mix {
            let Some(i) = styles.iter().position(|s| &s.id == id) else {
                let known: Vec<&str> = styles.iter().map(|s| s.id.as_str()).collect();
                return Err(PackError::BadMix(format!(
                    "`{}` has no style `{id}` (it has {})",
                    manifest.id,
                    known.join(", ")
                )));
            };
            weights[i] += share;
        }
        let total: f32 = weights.iter().sum();
        if total <= 0.0 {
            return Err(PackError::BadMix(
                "the shares of a mix must not all be 0".into(),
            ));
        }
        Ok(weights.into_iter().map(|w| w / total).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GeneratorConfig;
    use crate::pack::StyleInfo;

    fn manifest(styles: &[&str]) -> Manifest {
        let mut m = Manifest::new("painters", "Painters", GeneratorConfig::new(4, 1));
        m.styles = styles
            .iter()
            .map(|id| StyleInfo {
                id: id.to_string(),
                title: id.to_string(),
                ..StyleInfo::default()
            })
            .collect();
        m
    }

    #[test]
    fn parses_packs_styles_and_shares() {
        let r = StyleRef::parse("painters:vangogh=0.7, rembrandt=0.3").unwrap();
        assert_eq!(r.pack, "painters");
        assert_eq!(
            r.mix,
            [("vangogh".to_string(), 0.7), ("rembrandt".to_string(), 0.3)]
        );
        let r = StyleRef::parse("painters:vangogh").unwrap();
        assert_eq!(r.mix, [("vangogh".to_string(), 1.0)]);
        assert_eq!(StyleRef::parse("modern").unwrap().mix, []);
        // A path with a colon whose tail is no style list stays a path.
        let r = StyleRef::parse("C:/packs/My Style").unwrap();
        assert_eq!((r.pack.as_str(), r.mix.len()), ("C:/packs/My Style", 0));
        assert!(StyleRef::parse("painters:vangogh=-1").is_err());
        assert!(StyleRef::parse("painters:vangogh=lots").is_err());
    }

    #[test]
    fn weights_sum_to_one_in_table_order() {
        let m = manifest(&["a", "b", "c"]);
        let w = StyleRef::parse("p:c=3,a=1").unwrap().weights(&m).unwrap();
        assert_eq!(w, [0.25, 0.0, 0.75]);
        let w = StyleRef::parse("p").unwrap().weights(&m).unwrap();
        assert_eq!(w, [1.0, 0.0, 0.0]);
        let err = StyleRef::parse("p:d").unwrap().weights(&m).unwrap_err();
        assert!(err.to_string().contains("a, b, c"), "{err}");
        assert!(StyleRef::parse("p:a=0").unwrap().weights(&m).is_err());
        let single = manifest(&[]);
        assert_eq!(
            StyleRef::parse("p").unwrap().weights(&single).unwrap(),
            [1.0]
        );
        assert!(StyleRef::parse("p:a").unwrap().weights(&single).is_err());
    }
}
