//! Spark's `aes_encrypt`, `aes_decrypt` and `try_aes_decrypt`: AES with a 16, 24 or 32 byte
//! key in GCM (the default), CBC or ECB mode, laid out as Spark lays it out so that either
//! side decrypts what the other encrypted:
//!
//! - GCM: a 12-byte IV, the ciphertext, then the 16-byte tag; no padding; optional AAD.
//! - CBC: a 16-byte IV, then the ciphertext with PKCS#7 padding.
//! - ECB: the ciphertext with PKCS#7 padding; no IV.
//!
//! Without an IV (or with an empty one) encryption draws a random one.

use std::sync::Arc;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{
    BlockCipher, BlockDecryptMut, BlockEncrypt, BlockEncryptMut, BlockSizeUser, KeyInit, KeyIvInit,
    consts::U12, consts::U16,
};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::AesGcm;
use aes_gcm::aead::{Aead, Payload};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Which of the three functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AesOp {
    /// `aes_encrypt(input, key [, mode [, padding [, iv [, aad]]]])`.
    Encrypt,
    /// `aes_decrypt(input, key [, mode [, padding [, aad]]])`: an error for input it cannot
    /// decrypt.
    Decrypt,
    /// `try_aes_decrypt(..)`: NULL for input it cannot decrypt.
    TryDecrypt,
}

/// One of Spark's AES functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkAes {
    op: AesOp,
    signature: Signature,
}

impl SparkAes {
    /// The function `op`.
    pub fn new(op: AesOp) -> Self {
        // Encryption draws a random IV unless it is given one.
        let volatility = match op {
            AesOp::Encrypt => Volatility::Volatile,
            AesOp::Decrypt | AesOp::TryDecrypt => Volatility::Immutable,
        };
        SparkAes {
            op,
            signature: Signature::user_defined(volatility),
        }
    }

    fn max_args(&self) -> usize {
        match self.op {
            AesOp::Encrypt => 6,
            AesOp::Decrypt | AesOp::TryDecrypt => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Gcm,
    Cbc,
    Ecb,
}

/// A mode and padding as Spark accepts them (case-insensitive, `DEFAULT` padding being the
/// mode's own), or Spark's error.
fn mode(name: &str, mode: &str, padding: &str) -> Result<Mode> {
    let mode_upper = mode.to_ascii_uppercase();
    let padding_upper = padding.to_ascii_uppercase();
    match (mode_upper.as_str(), padding_upper.as_str()) {
        ("GCM", "NONE" | "DEFAULT") => Ok(Mode::Gcm),
        ("CBC", "PKCS" | "DEFAULT") => Ok(Mode::Cbc),
        ("ECB", "PKCS" | "DEFAULT") => Ok(Mode::Ecb),
        _ => exec_err!(
            "[UNSUPPORTED_FEATURE.AES_MODE] AES-{mode} with the padding {padding} by the `{name}` function is not supported; use GCM with NONE, or CBC or ECB with PKCS"
        ),
    }
}

fn gcm<C>(key: &[u8], iv: &[u8], input: &[u8], aad: &[u8], encrypt: bool) -> Option<Vec<u8>>
where
    C: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt + KeyInit,
{
    let cipher = AesGcm::<C, U12>::new_from_slice(key).ok()?;
    if encrypt {
        let sealed = cipher
            .encrypt(iv.into(), Payload { msg: input, aad })
            .ok()?;
        Some([iv, &sealed].concat())
    } else {
        let (iv, sealed) = input.split_at_checked(12)?;
        cipher.decrypt(iv.into(), Payload { msg: sealed, aad }).ok()
    }
}

fn cbc<C>(key: &[u8], iv: &[u8], input: &[u8], encrypt: bool) -> Option<Vec<u8>>
where
    C: BlockCipher + BlockEncryptMut + BlockDecryptMut + KeyInit,
{
    if encrypt {
        let sealed = cbc::Encryptor::<C>::new_from_slices(key, iv)
            .ok()?
            .encrypt_padded_vec_mut::<Pkcs7>(input);
        Some([iv, &sealed].concat())
    } else {
        let (iv, sealed) = input.split_at_checked(16)?;
        cbc::Decryptor::<C>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(sealed)
            .ok()
    }
}

fn ecb<C>(key: &[u8], input: &[u8], encrypt: bool) -> Option<Vec<u8>>
where
    C: BlockCipher + BlockEncryptMut + BlockDecryptMut + KeyInit,
{
    if encrypt {
        Some(
            ecb::Encryptor::<C>::new_from_slice(key)
                .ok()?
                .encrypt_padded_vec_mut::<Pkcs7>(input),
        )
    } else {
        ecb::Decryptor::<C>::new_from_slice(key)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(input)
            .ok()
    }
}

/// One row: `None` when the input cannot be decrypted (a wrong key, a corrupt input).
fn crypt(
    mode: Mode,
    key: &[u8],
    iv: &[u8],
    input: &[u8],
    aad: &[u8],
    encrypt: bool,
) -> Option<Vec<u8>> {
    match (mode, key.len()) {
        (Mode::Gcm, 16) => gcm::<Aes128>(key, iv, input, aad, encrypt),
        (Mode::Gcm, 24) => gcm::<Aes192>(key, iv, input, aad, encrypt),
        (Mode::Gcm, _) => gcm::<Aes256>(key, iv, input, aad, encrypt),
        (Mode::Cbc, 16) => cbc::<Aes128>(key, iv, input, encrypt),
        (Mode::Cbc, 24) => cbc::<Aes192>(key, iv, input, encrypt),
        (Mode::Cbc, _) => cbc::<Aes256>(key, iv, input, encrypt),
        (Mode::Ecb, 16) => ecb::<Aes128>(key, input, encrypt),
        (Mode::Ecb, 24) => ecb::<Aes192>(key, input, encrypt),
        (Mode::Ecb, _) => ecb::<Aes256>(key, input, encrypt),
    }
}

/// Row `row` of an optional text argument, or `default` when it was not given.
fn text_at<'a>(arg: &'a Option<ArrayRef>, row: usize, default: &'static str) -> &'a str {
    arg.as_ref()
        .map_or(default, |a| a.as_string::<i32>().value(row))
}

/// Row `row` of an optional binary argument; empty when it was not given.
fn bytes_at(arg: &Option<ArrayRef>, row: usize) -> &[u8] {
    arg.as_ref()
        .map_or(&[][..], |a| a.as_binary::<i32>().value(row))
}

fn as_binary(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Binary)?)
}

fn as_text(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Utf8)?)
}

impl ScalarUDFImpl for SparkAes {
    fn name(&self) -> &str {
        match self.op {
            AesOp::Encrypt => "aes_encrypt",
            AesOp::Decrypt => "aes_decrypt",
            AesOp::TryDecrypt => "try_aes_decrypt",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let n = arg_types.len();
        if !(2..=self.max_args()).contains(&n) {
            return plan_err!("{}() does not take {n} arguments", self.name());
        }
        // input, key, mode, padding, then (encrypt) iv and aad or (decrypt) aad.
        Ok((0..n)
            .map(|i| match i {
                2 | 3 => DataType::Utf8,
                _ => DataType::Binary,
            })
            .collect())
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = self.name();
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let binary = |i: usize| arrays.get(i).map(as_binary).transpose();
        let text = |i: usize| arrays.get(i).map(as_text).transpose();
        let input = as_binary(&arrays[0])?;
        let key = as_binary(&arrays[1])?;
        let (modes, paddings) = (text(2)?, text(3)?);
        let encrypt = self.op == AesOp::Encrypt;
        let (ivs, aads) = if encrypt {
            (binary(4)?, binary(5)?)
        } else {
            (None, binary(4)?)
        };
        let (input, key) = (input.as_binary::<i32>(), key.as_binary::<i32>());
        let mut out = BinaryBuilder::with_capacity(rows, rows * 32);
        for row in 0..rows {
            // NULL in any given argument gives NULL, as in Spark.
            if input.is_null(row)
                || key.is_null(row)
                || [&modes, &paddings, &ivs, &aads]
                    .iter()
                    .any(|a| a.as_ref().is_some_and(|a| a.is_null(row)))
            {
                out.append_null();
                continue;
            }
            let (mode_name, padding) = (
                text_at(&modes, row, "GCM"),
                text_at(&paddings, row, "DEFAULT"),
            );
            let mode = mode(name, mode_name, padding)?;
            let key = key.value(row);
            if ![16, 24, 32].contains(&key.len()) {
                return exec_err!(
                    "[INVALID_PARAMETER_VALUE.AES_KEY_LENGTH] the `key` of `{name}` must be 16, 24 or 32 bytes, but it is {} bytes",
                    key.len()
                );
            }
            let aad = bytes_at(&aads, row);
            if !aad.is_empty() && mode != Mode::Gcm {
                return exec_err!(
                    "[UNSUPPORTED_FEATURE.AES_MODE_AAD] `{name}` takes additional authenticated data (aad) only in GCM mode, not {mode_name}"
                );
            }
            let iv = if encrypt {
                let given = bytes_at(&ivs, row);
                let wanted = match mode {
                    Mode::Gcm => 12,
                    Mode::Cbc => 16,
                    Mode::Ecb if given.is_empty() => 0,
                    Mode::Ecb => {
                        return exec_err!(
                            "[UNSUPPORTED_FEATURE.AES_MODE_IV] `{name}` takes an initialization vector (iv) only in GCM or CBC mode, not ECB"
                        );
                    }
                };
                if given.is_empty() {
                    let mut random = vec![0u8; wanted];
                    if let Err(e) = getrandom::fill(&mut random) {
                        return exec_err!("`{name}` could not draw a random IV: {e}");
                    }
                    random
                } else if given.len() != wanted {
                    return exec_err!(
                        "[INVALID_PARAMETER_VALUE.AES_IV_LENGTH] the `iv` of `{name}` in {mode_name} mode must be {wanted} bytes, but it is {} bytes",
                        given.len()
                    );
                } else {
                    given.to_vec()
                }
            } else {
                Vec::new()
            };
            match crypt(mode, key, &iv, input.value(row), aad, encrypt) {
                Some(bytes) => out.append_value(bytes),
                None if self.op == AesOp::TryDecrypt => out.append_null(),
                None => {
                    return exec_err!(
                        "[INVALID_PARAMETER_VALUE.AES_CRYPTO_ERROR] `{name}` could not decrypt its input with this key, mode and aad (a wrong key, or input that is not {mode_name} ciphertext); try_aes_decrypt gives NULL instead"
                    );
                }
            }
        }
        Ok(ColumnarValue::Array(
            Arc::new(out.finish()) as Arc<dyn Array>
        ))
    }
}
