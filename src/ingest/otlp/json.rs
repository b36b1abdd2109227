//! OTLP/JSON decoding (protobuf JSON mapping): lowerCamelCase field names
//! (snake_case also accepted), 64-bit integers as strings or numbers, enums
//! as integers, doubles as numbers or `"NaN"`/`"Infinity"`/`"-Infinity"`,
//! bytes as base64. Unknown fields are ignored.

use serde_json::{Map, Value};

use super::{OtlpError, pb};

type Res<T> = Result<T, OtlpError>;

struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

fn err(path: &str, reason: impl Into<String>) -> OtlpError {
    OtlpError::Json {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.to_string()
        },
        reason: reason.into(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

impl<'a> Obj<'a> {
    fn new(v: &'a Value, path: String) -> Res<Obj<'a>> {
        match v {
            Value::Object(map) => Ok(Obj { map, path }),
            other => Err(err(&path, format!("want an object, got {}", kind(other)))),
        }
    }
    fn field(&self, camel: &str) -> Option<(&'a Value, String)> {
        let (k, v) = self
            .map
            .get_key_value(camel)
            .or_else(|| self.map.get_key_value(snake(camel).as_str()))?;
        if v.is_null() {
            return None;
        }
        Some((
            v,
            format!("{}.{k}", self.path)
                .trim_start_matches('.')
                .to_string(),
        ))
    }
    fn obj(&self, camel: &str) -> Res<Option<Obj<'a>>> {
        self.field(camel).map(|(v, p)| Obj::new(v, p)).transpose()
    }
    fn list(&self, camel: &str) -> Res<Vec<(&'a Value, String)>> {
        match self.field(camel) {
            None => Ok(Vec::new()),
            Some((Value::Array(a), p)) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| (v, format!("{p}[{i}]")))
                .collect()),
            Some((v, p)) => Err(err(&p, format!("want an array, got {}", kind(v)))),
        }
    }
    fn string(&self, camel: &str) -> Res<String> {
        match self.field(camel) {
            None => Ok(String::new()),
            Some((Value::String(s), _)) => Ok(s.clone()),
            Some((v, p)) => Err(err(&p, format!("want a string, got {}", kind(v)))),
        }
    }
    fn boolean(&self, camel: &str) -> Res<bool> {
        match self.field(camel) {
            None => Ok(false),
            Some((Value::Bool(b), _)) => Ok(*b),
            Some((v, p)) => Err(err(&p, format!("want a boolean, got {}", kind(v)))),
        }
    }
    fn u64(&self, camel: &str) -> Res<u64> {
        match self.field(camel) {
            None => Ok(0),
            Some((v, p)) => as_u64(v, &p),
        }
    }
    fn i64(&self, camel: &str) -> Res<Option<i64>> {
        self.field(camel).map(|(v, p)| as_i64(v, &p)).transpose()
    }
    fn f64(&self, camel: &str) -> Res<Option<f64>> {
        self.field(camel).map(|(v, p)| as_f64(v, &p)).transpose()
    }
    fn enum_i32(&self, camel: &str) -> Res<i32> {
        match self.i64(camel)? {
            None => Ok(0),
            Some(n) => {
                i32::try_from(n).map_err(|_| err(&self.path, format!("{camel} {n} out of range")))
            }
        }
    }
}

fn as_u64(v: &Value, p: &str) -> Res<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| err(p, format!("want an unsigned integer, got {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| err(p, format!("want an unsigned integer, got {s:?}"))),
        other => Err(err(
            p,
            format!("want an unsigned integer, got {}", kind(other)),
        )),
    }
}

fn as_i64(v: &Value, p: &str) -> Res<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| err(p, format!("want an integer, got {n}"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| err(p, format!("want an integer, got {s:?}"))),
        other => Err(err(p, format!("want an integer, got {}", kind(other)))),
    }
}

fn as_f64(v: &Value, p: &str) -> Res<f64> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| err(p, format!("want a number, got {n}"))),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s
                .parse()
                .map_err(|_| err(p, format!("want a number, got {s:?}"))),
        },
        other => Err(err(p, format!("want a number, got {}", kind(other)))),
    }
}

fn any_value(v: &Value, path: String) -> Res<pb::AnyValue> {
    use pb::any_value::Value as V;
    let o = Obj::new(v, path)?;
    let value = if let Some((s, p)) = o.field("stringValue") {
        match s {
            Value::String(s) => Some(V::StringValue(s.clone())),
            other => return Err(err(&p, format!("want a string, got {}", kind(other)))),
        }
    } else if o.field("boolValue").is_some() {
        Some(V::BoolValue(o.boolean("boolValue")?))
    } else if let Some(i) = o.i64("intValue")? {
        Some(V::IntValue(i))
    } else if let Some(d) = o.f64("doubleValue")? {
        Some(V::DoubleValue(d))
    } else if let Some(a) = o.obj("arrayValue")? {
        let values = a
            .list("values")?
            .into_iter()
            .map(|(v, p)| any_value(v, p))
            .collect::<Res<Vec<_>>>()?;
        Some(V::ArrayValue(pb::ArrayValue { values }))
    } else if let Some(kv) = o.obj("kvlistValue")? {
        Some(V::KvlistValue(pb::KeyValueList {
            values: key_values(&kv, "values")?,
        }))
    } else if let Some((b, p)) = o.field("bytesValue") {
        use base64::Engine;
        let s = b.as_str().ok_or_else(|| err(&p, "want a base64 string"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| err(&p, format!("invalid base64: {e}")))?;
        Some(V::BytesValue(bytes))
    } else {
        None
    };
    Ok(pb::AnyValue { value })
}

fn key_values(o: &Obj<'_>, field: &str) -> Res<Vec<pb::KeyValue>> {
    o.list(field)?
        .into_iter()
        .map(|(v, p)| {
            let kv = Obj::new(v, p)?;
            Ok(pb::KeyValue {
                key: kv.string("key")?,
                value: kv
                    .field("value")
                    .map(|(v, p)| any_value(v, p))
                    .transpose()?,
            })
        })
        .collect()
}

fn number_points(o: &Obj<'_>) -> Res<Vec<pb::NumberDataPoint>> {
    use pb::number_data_point::Value as V;
    o.list("dataPoints")?
        .into_iter()
        .map(|(v, p)| {
            let d = Obj::new(v, p)?;
            let value = if let Some(x) = d.f64("asDouble")? {
                Some(V::AsDouble(x))
            } else {
                d.i64("asInt")?.map(V::AsInt)
            };
            Ok(pb::NumberDataPoint {
                attributes: key_values(&d, "attributes")?,
                start_time_unix_nano: d.u64("startTimeUnixNano")?,
                time_unix_nano: d.u64("timeUnixNano")?,
                value,
                flags: d.u64("flags")? as u32,
            })
        })
        .collect()
}

fn metric(o: &Obj<'_>) -> Res<pb::Metric> {
    use pb::metric::Data;
    let data = if let Some(g) = o.obj("gauge")? {
        Some(Data::Gauge(pb::Gauge {
            data_points: number_points(&g)?,
        }))
    } else if let Some(s) = o.obj("sum")? {
        Some(Data::Sum(pb::Sum {
            data_points: number_points(&s)?,
            aggregation_temporality: s.enum_i32("aggregationTemporality")?,
            is_monotonic: s.boolean("isMonotonic")?,
        }))
    } else if let Some(h) = o.obj("histogram")? {
        let mut pts = Vec::new();
        for (v, p) in h.list("dataPoints")? {
            let d = Obj::new(v, p)?;
            pts.push(pb::HistogramDataPoint {
                attributes: key_values(&d, "attributes")?,
                start_time_unix_nano: d.u64("startTimeUnixNano")?,
                time_unix_nano: d.u64("timeUnixNano")?,
                count: d.u64("count")?,
                sum: d.f64("sum")?,
                bucket_counts: d
                    .list("bucketCounts")?
                    .into_iter()
                    .map(|(v, p)| as_u64(v, &p))
                    .collect::<Res<_>>()?,
                explicit_bounds: d
                    .list("explicitBounds")?
                    .into_iter()
                    .map(|(v, p)| as_f64(v, &p))
                    .collect::<Res<_>>()?,
                flags: d.u64("flags")? as u32,
                min: d.f64("min")?,
                max: d.f64("max")?,
            });
        }
        Some(Data::Histogram(pb::Histogram {
            data_points: pts,
            aggregation_temporality: h.enum_i32("aggregationTemporality")?,
        }))
    } else if let Some(s) = o.obj("summary")? {
        let mut pts = Vec::new();
        for (v, p) in s.list("dataPoints")? {
            let d = Obj::new(v, p)?;
            let mut qs = Vec::new();
            for (v, p) in d.list("quantileValues")? {
                let q = Obj::new(v, p)?;
                qs.push(pb::summary_data_point::ValueAtQuantile {
                    quantile: q.f64("quantile")?.unwrap_or(0.0),
                    value: q.f64("value")?.unwrap_or(0.0),
                });
            }
            pts.push(pb::SummaryDataPoint {
                attributes: key_values(&d, "attributes")?,
                start_time_unix_nano: d.u64("startTimeUnixNano")?,
                time_unix_nano: d.u64("timeUnixNano")?,
                count: d.u64("count")?,
                sum: d.f64("sum")?.unwrap_or(0.0),
                quantile_values: qs,
                flags: d.u64("flags")? as u32,
            });
        }
        Some(Data::Summary(pb::Summary { data_points: pts }))
    } else if let Some(e) = o.obj("exponentialHistogram")? {
        Some(Data::ExponentialHistogram(pb::ExponentialHistogram {
            data_points: e
                .list("dataPoints")?
                .into_iter()
                .map(|_| pb::ExponentialHistogramDataPoint {})
                .collect(),
            aggregation_temporality: e.enum_i32("aggregationTemporality")?,
        }))
    } else {
        None
    };
    Ok(pb::Metric {
        name: o.string("name")?,
        description: o.string("description")?,
        unit: o.string("unit")?,
        data,
        metadata: key_values(o, "metadata")?,
    })
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest`.
pub fn decode_json(body: &[u8]) -> Result<pb::ExportMetricsServiceRequest, OtlpError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        err(
            "$",
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let root = Obj::new(&v, String::new())?;
    let mut resource_metrics = Vec::new();
    for (v, p) in root.list("resourceMetrics")? {
        let rm = Obj::new(v, p)?;
        let resource = rm
            .obj("resource")?
            .map(|r| {
                Ok::<_, OtlpError>(pb::Resource {
                    attributes: key_values(&r, "attributes")?,
                    dropped_attributes_count: r.u64("droppedAttributesCount")? as u32,
                })
            })
            .transpose()?;
        let mut scope_metrics = Vec::new();
        for (v, p) in rm.list("scopeMetrics")? {
            let sm = Obj::new(v, p)?;
            let scope = sm
                .obj("scope")?
                .map(|s| {
                    Ok::<_, OtlpError>(pb::InstrumentationScope {
                        name: s.string("name")?,
                        version: s.string("version")?,
                        attributes: key_values(&s, "attributes")?,
                        dropped_attributes_count: s.u64("droppedAttributesCount")? as u32,
                    })
                })
                .transpose()?;
            let metrics = sm
                .list("metrics")?
                .into_iter()
                .map(|(v, p)| metric(&Obj::new(v, p)?))
                .collect::<Res<Vec<_>>>()?;
            scope_metrics.push(pb::ScopeMetrics {
                scope,
                metrics,
                schema_url: sm.string("schemaUrl")?,
            });
        }
        resource_metrics.push(pb::ResourceMetrics {
            resource,
            scope_metrics,
            schema_url: rm.string("schemaUrl")?,
        });
    }
    Ok(pb::ExportMetricsServiceRequest { resource_metrics })
}
